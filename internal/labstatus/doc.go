// Package labstatus reads a lab's state for `wgbird-lab status` and the
// demo: the router's nexthops and route, each server's wireguard-go, BIRD
// and wgbird status, and each client's route, endpoint and handshake.
package labstatus

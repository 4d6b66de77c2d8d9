// Package birdlint finds BIRD set-ups that defeat wgbird's failover, from
// `show protocols all`, `show route ... export` counts and bird.conf.
package birdlint

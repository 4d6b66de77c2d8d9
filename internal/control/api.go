package control

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wgbird/wgbird/internal/daemon"
)

// API paths.
const (
	PathStatus  = "/v1/status"
	PathDrain   = "/v1/drain"
	PathUndrain = "/v1/undrain"
	PathPeers   = "/v1/peers"
)

// StatusReply is the answer to GET /v1/status.
type StatusReply struct {
	Version  string                 `json:"version"`
	BIRD     *daemon.BIRDStatus     `json:"bird,omitempty"`
	Services []daemon.ServiceStatus `json:"services"`
}

// DrainRequest is the body of POST /v1/drain. No services means all.
type DrainRequest struct {
	Services []string `json:"services"`
	Reason   string   `json:"reason"`
	// Persist keeps the drain across a reboot (under control.state_dir);
	// without it the drain survives a wgbird restart only.
	Persist bool `json:"persist"`
}

// UndrainRequest is the body of POST /v1/undrain. No services means all.
type UndrainRequest struct {
	Services []string `json:"services"`
}

// DrainReply answers drain and undrain: the services the request changed
// and, for a drain, the drain now in force.
type DrainReply struct {
	Services []string      `json:"services"`
	Drain    *daemon.Drain `json:"drain,omitempty"`
}

// PeersReply is the answer to GET /v1/peers?service=NAME: the service's
// WireGuard peers and their counters, for drain --wait.
type PeersReply struct {
	Service   string `json:"service"`
	Interface string `json:"interface"`
	// QuietPeriod is how long every peer's counters must stay unchanged
	// for drain --wait to call the interface quiet.
	QuietPeriod Duration  `json:"quiet_period"`
	ReadAt      time.Time `json:"read_at"`
	// DeviceMissing: the interface does not exist, so no traffic can
	// flow through it. Peers is then empty.
	DeviceMissing bool   `json:"device_missing,omitempty"`
	Peers         []Peer `json:"peers"`
}

// Peer is one WireGuard peer's identity and counters.
type Peer struct {
	PublicKey     string    `json:"public_key"`
	Endpoint      string    `json:"endpoint,omitempty"`
	RxBytes       int64     `json:"rx_bytes"`
	TxBytes       int64     `json:"tx_bytes"`
	LastHandshake time.Time `json:"last_handshake"`
}

// ErrorReply is the body of every non-2xx answer.
type ErrorReply struct {
	Error string `json:"error"`
}

// Duration is a time.Duration that reads and writes JSON as "10s".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

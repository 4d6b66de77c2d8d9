package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// API paths.
const (
	PathStatus  = "/v1/status"
	PathDrain   = "/v1/drain"
	PathUndrain = "/v1/undrain"
	PathPeers   = "/v1/peers"
	// PathPprof is the root of Go's runtime profiles and PathMemory the
	// heap after a forced GC (MemoryReply), both served only with
	// `wgbird run --pprof`.
	PathPprof  = "/debug/pprof/"
	PathMemory = "/debug/memory"
)

// MemoryReply is the answer to GET /debug/memory: the Go runtime's memory
// right after two forced GCs (the second frees what sync.Pools kept
// through the first), read before the reply allocates anything. Bytes.
type MemoryReply struct {
	// HeapLive is the heap the GC found reachable (/gc/heap/live:bytes):
	// what wgbird holds, to the byte.
	HeapLive uint64 `json:"heap_live"`
	// HeapInuse is bytes in spans with at least one object: HeapLive plus
	// those spans' free space (runtime.MemStats.HeapInuse).
	HeapInuse uint64 `json:"heap_inuse"`
	// HeapSys is the heap's address space from the OS, HeapReleased the
	// part of it returned since: HeapSys - HeapReleased - HeapInuse is
	// heap kept for reuse, resident until the scavenger returns it.
	HeapSys      uint64 `json:"heap_sys"`
	HeapReleased uint64 `json:"heap_released"`
	HeapObjects  uint64 `json:"heap_objects"`
	StackInuse   uint64 `json:"stack_inuse"`
	// Sys is all the memory the runtime obtained from the OS.
	Sys   uint64 `json:"sys"`
	NumGC uint32 `json:"num_gc"`
}

// StatusReply is the answer to GET /v1/status.
type StatusReply struct {
	Version  string          `json:"version"`
	BIRD     *BIRDStatus     `json:"bird,omitempty"`
	Services []ServiceStatus `json:"services"`
}

// BIRDStatus is what wgbird knows of BIRD's control socket, from the
// latest `show protocols`.
type BIRDStatus struct {
	Socket    string `json:"socket"`
	Reachable bool   `json:"reachable"`
	// Version is BIRD's own ("2.0.12"), read once BIRD answers.
	Version string `json:"version,omitempty"`
	// RTT is the round trip of the latest `show protocols`.
	RTT       time.Duration `json:"rtt_ns"`
	Error     string        `json:"error,omitempty"`
	CheckedAt time.Time     `json:"checked_at"`
}

// ServiceStatus is a snapshot of one service.
type ServiceStatus struct {
	Name      string     `json:"name"`
	Interface string     `json:"interface"`
	State     string     `json:"state"` // "unknown", "withdrawn" or "announced"
	Since     time.Time  `json:"since"`
	Reason    string     `json:"reason"`
	Healthy   bool       `json:"healthy"`
	Checks    []Check    `json:"checks"`
	Protocols []Protocol `json:"protocols"`
	BIRDError string     `json:"bird_error,omitempty"`
	Drain     *Drain     `json:"drain,omitempty"`
	CheckedAt time.Time  `json:"checked_at"`
	// Continuity is absent when neither vip_source nor takeover is on.
	Continuity *Continuity `json:"continuity,omitempty"`
}

// Check is the outcome of one health check of a service.
type Check struct {
	// Name identifies the check: "wireguard", "link", "probe", "exec:NAME".
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Hard marks a failure that means a part is gone (device, link or
	// VIP): the service is withdrawn at once, without waiting for fall.
	Hard bool `json:"hard"`
	// Detail explains the result to a person.
	Detail string `json:"detail"`
	// Took is how long the check ran.
	Took time.Duration `json:"took_ns"`
}

// Protocol is one BIRD protocol as `show protocols` lists it.
type Protocol struct {
	Name  string `json:"name"`
	Proto string `json:"proto"`
	Table string `json:"table"`
	State string `json:"state"`
	Since string `json:"since"`
	Info  string `json:"info"`
}

// Enabled reports whether BIRD shows the protocol enabled: every state but
// "down" (disabled by configuration or by the CLI).
func (p Protocol) Enabled() bool { return p.State != "down" }

// Drain is an operator's request to withdraw a service whatever its
// health.
type Drain struct {
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Persist bool      `json:"persistent"`
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
	Services []string `json:"services"`
	Drain    *Drain   `json:"drain,omitempty"`
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

// Continuity is a service's client continuity (issue 13): VIP-sourced
// WireGuard traffic, the anycast group and session takeovers.
type Continuity struct {
	// VIPSource is absent when vip_source is off.
	VIPSource *VIPSource      `json:"vip_source,omitempty"`
	Group     *Group          `json:"group,omitempty"`
	Takeover  *TakeoverStatus `json:"takeover,omitempty"`
}

// VIPSource says whether WireGuard's packets leave from the VIP.
type VIPSource struct {
	InPlace bool   `json:"in_place"`
	Detail  string `json:"detail"`
	// Warnings name clients a packet would not reach from the VIP: no
	// route to their endpoint, or another source chosen for it.
	Warnings []string `json:"warnings,omitempty"`
}

// Group is the anycast group as this member hears it.
type Group struct {
	Port    int           `json:"port"`
	Error   string        `json:"error,omitempty"`
	Members []GroupMember `json:"members"`
}

// GroupMember is one member's last word.
type GroupMember struct {
	Address     string    `json:"address"`
	State       string    `json:"state"`
	Heard       time.Time `json:"heard"`
	Silent      bool      `json:"silent"`
	Peers       int       `json:"peers"`
	Refused     uint64    `json:"refused"`
	LastRefusal string    `json:"last_refusal,omitempty"`
}

// TakeoverStatus is what session takeover did.
type TakeoverStatus struct {
	Enabled bool          `json:"enabled"`
	Error   string        `json:"error,omitempty"`
	Stats   TakeoverStats `json:"stats"`
	Last    *Takeover     `json:"last,omitempty"`
}

// TakeoverStats count takeovers and what the watcher saw.
type TakeoverStats struct {
	Takeovers uint64 `json:"takeovers"`
	// Answered takeovers got the client's handshake response; Unanswered
	// got none within 10 s.
	Answered   uint64 `json:"answered"`
	Unanswered uint64 `json:"unanswered"`
	// Unmapped transport packets for unknown sessions came from an
	// endpoint no member and no device knows.
	Unmapped uint64 `json:"unmapped"`
	// Inactive ones arrived while this server did not announce.
	Inactive uint64 `json:"inactive"`
	// Verified indexes turned out to be this server's own sessions, made
	// before it started watching.
	Verified uint64 `json:"verified"`
}

// Takeover is one takeover.
type Takeover struct {
	Peer     string    `json:"peer"`
	Endpoint string    `json:"endpoint"`
	At       time.Time `json:"at"`
	Method   string    `json:"method"`
	Via      string    `json:"via"`
	Error    string    `json:"error,omitempty"`
	// FirstPacketBack is how long after At the client's handshake
	// response arrived; 0 while none has.
	FirstPacketBack time.Duration `json:"first_packet_back_ns"`
}

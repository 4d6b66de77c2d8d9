package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// Config is a loaded, validated configuration with every default filled in.
type Config struct {
	BIRD     BIRD
	Control  Control
	Shutdown Shutdown
	Metrics  Metrics
	Hook     Hook
	// Services holds at least one service, in file order.
	Services []Service
}

// BIRD is the [bird] table: how to reach bird2's control socket.
type BIRD struct {
	Socket  string
	Timeout time.Duration // deadline for each BIRD call
}

// Control is the [control] table: wgbird's own control socket and the
// directories that keep drains.
type Control struct {
	Socket     string
	Group      string // group owning the 0660 socket; "" = root's group
	StateDir   string // persistent drains (survive a reboot)
	RuntimeDir string // drains that survive a wgbird restart but not a reboot
}

// Shutdown is the [shutdown] table: what wgbird does to BIRD when it stops.
type Shutdown struct {
	Delay            time.Duration // wait after withdrawing at system shutdown
	OnSystemShutdown string        // Withdraw or Keep
	OnStop           string        // Keep or Withdraw
}

// Values of Shutdown.OnSystemShutdown and Shutdown.OnStop.
const (
	Withdraw = "withdraw" // disable the service's BIRD protocols
	Keep     = "keep"     // leave BIRD as it is
)

// Metrics is the [metrics] table.
type Metrics struct {
	Listen string // host:port; "" = no metrics endpoint
}

// Hook is the [hook] table: a command run on every transition.
type Hook struct {
	Command []string // program and arguments; nil = no hook
	Timeout time.Duration
}

// Service is one [[service]]: a WireGuard interface, the VIPs that must be on
// it, the BIRD protocols announced while it is healthy, and its thresholds.
type Service struct {
	Name             string
	Interface        string
	VIPs             []netip.Prefix // host address kept, not masked
	Protocols        []string
	Interval         time.Duration
	FastInterval     time.Duration
	LivenessInterval time.Duration
	Timeout          time.Duration
	Rise             int
	Fall             int
	ListenPort       int // 0 = any non-zero port
	MinPeers         int
	MaxHandshakeAge  time.Duration // 0 = off
	QuietPeriod      time.Duration
	Exec             []Exec
	Probe            *Probe // nil = no probe

	// Client continuity (issue 13).
	VIPSource       bool         // WireGuard's packets leave from the VIP
	VIPSourceTable  int          // 0 = vipsrc.DefaultTable + the service's position
	Takeover        bool         // take over clients that arrive without a session
	Group           []netip.Addr // the anycast group's members; none = no group
	GroupPort       int
	GroupSecretFile string // "" = derive the group key from the WireGuard private key
}

// Exec is one [[service.exec]] check.
type Exec struct {
	Name    string
	Command []string
	Timeout time.Duration
}

// Probe is a service's [service.probe] table: the active WireGuard
// handshake probe against the service's own server.
type Probe struct {
	PrivateKeyFile   string // the probe's private key, as written by wgbird probe-key
	PresharedKeyFile string // "" = no preshared key
	ServerPublicKey  string // base64; "" = the device's own public key
	Endpoint         string // address:port; "" = 127.0.0.1 and the device's listen port
	Timeout          time.Duration
}

// Defaults of the keys that are not required.
const (
	DefaultBIRDSocket       = "/run/bird/bird.ctl"
	DefaultBIRDTimeout      = 2 * time.Second
	DefaultControlSocket    = "/run/wgbird/wgbird.sock"
	DefaultStateDir         = "/var/lib/wgbird"
	DefaultRuntimeDir       = "/run/wgbird"
	DefaultShutdownDelay    = 2 * time.Second
	DefaultOnSystemShutdown = Withdraw
	DefaultOnStop           = Keep
	DefaultInterval         = time.Second
	DefaultFastInterval     = 100 * time.Millisecond // or Interval, if shorter
	DefaultLivenessInterval = 500 * time.Millisecond // or Interval, if shorter
	DefaultTimeout          = 250 * time.Millisecond // or Interval/2, if shorter
	DefaultRise             = 3
	DefaultFall             = 2
	DefaultMinPeers         = 1
	DefaultQuietPeriod      = 10 * time.Second
	DefaultGroupPort        = 51871
	DefaultExecTimeout      = 2 * time.Second
	DefaultProbeTimeout     = 250 * time.Millisecond // or Interval/2, if shorter
	DefaultHookTimeout      = 10 * time.Second
	MinInterval             = 10 * time.Millisecond
)

// maxFileSize bounds what Load reads, so that a wrong path such as
// /dev/zero fails instead of filling memory.
const maxFileSize = 1 << 20

// Default returns the configuration of an empty file: every default, and no
// service (which Parse would refuse).
func Default() Config {
	return Config{
		BIRD: BIRD{Socket: DefaultBIRDSocket, Timeout: DefaultBIRDTimeout},
		Control: Control{
			Socket:     DefaultControlSocket,
			StateDir:   DefaultStateDir,
			RuntimeDir: DefaultRuntimeDir,
		},
		Shutdown: Shutdown{
			Delay:            DefaultShutdownDelay,
			OnSystemShutdown: DefaultOnSystemShutdown,
			OnStop:           DefaultOnStop,
		},
		Hook: Hook{Timeout: DefaultHookTimeout},
	}
}

// Error is a problem with a configuration file. Every error returned by Load
// and Parse is an *Error.
type Error struct {
	File string
	// Line is 1-based; 0 when the problem has no single line (the file
	// cannot be read, or a required table is absent).
	Line int
	// Key is the path of the key as written, with arrays of tables indexed
	// from 1: "service[1].exec[2].timeout", "service[1].vips[2]". It is ""
	// for TOML syntax errors and unreadable files.
	Key string
	Msg string
	// Err is the underlying error, if any (the read error of Load).
	Err error
}

// Error formats the error as "FILE:LINE: KEY: MSG", leaving out ":LINE"
// when Line is 0 and "KEY: " when Key is "".
func (e *Error) Error() string {
	var b bytes.Buffer
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// IsConfigError reports whether err is (or wraps) an *Error. All errors from
// Load and Parse are; the caller exits 2 for them.
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error() // the path is already in the message
		}
		return nil, &Error{File: path, Msg: "reading config: " + msg, Err: err}
	}
	return Parse(path, data)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

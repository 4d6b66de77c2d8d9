package metrics

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/wgbird/wgbird/internal/bird"
)

// Command labels of the BIRD metrics.
const (
	cmdProtocols = "show_protocols"
	cmdStatus    = "show_status"
	cmdEnable    = "enable"
	cmdDisable   = "disable"
)

// BIRD is the BIRD client InstrumentBIRD wraps (the daemon's BIRD).
type BIRD interface {
	Protocols(ctx context.Context) ([]bird.Protocol, error)
	Enable(ctx context.Context, name string) error
	Disable(ctx context.Context, name string) error
	Status(ctx context.Context) (string, error)
}

// instrumented times every call to the BIRD it wraps.
type instrumented struct {
	b BIRD
	m *Metrics
}

var _ BIRD = instrumented{}

// InstrumentBIRD returns b with every call timed in
// wgbird_bird_command_duration_seconds and every failure counted in
// wgbird_bird_command_errors_total.
func (m *Metrics) InstrumentBIRD(b BIRD) BIRD {
	// Create the series up front, so that rate() sees the first error.
	for _, c := range []string{cmdProtocols, cmdStatus, cmdEnable, cmdDisable} {
		m.birdDuration.WithLabelValues(c)
	}
	return instrumented{b: b, m: m}
}

func (i instrumented) Protocols(ctx context.Context) ([]bird.Protocol, error) {
	start := time.Now()
	ps, err := i.b.Protocols(ctx)
	i.observe(cmdProtocols, start, err)
	return ps, err
}

func (i instrumented) Status(ctx context.Context) (string, error) {
	start := time.Now()
	v, err := i.b.Status(ctx)
	i.observe(cmdStatus, start, err)
	return v, err
}

func (i instrumented) Enable(ctx context.Context, name string) error {
	start := time.Now()
	err := i.b.Enable(ctx, name)
	i.observe(cmdEnable, start, err)
	return err
}

func (i instrumented) Disable(ctx context.Context, name string) error {
	start := time.Now()
	err := i.b.Disable(ctx, name)
	i.observe(cmdDisable, start, err)
	return err
}

func (i instrumented) observe(cmd string, start time.Time, err error) {
	i.m.birdDuration.WithLabelValues(cmd).Observe(time.Since(start).Seconds())
	if err != nil {
		i.m.birdErrors.WithLabelValues(cmd, ErrorCode(err)).Inc()
	}
}

// ErrorCode is the code label of a failed BIRD command: BIRD's four-digit
// reply code ("8007"), "timeout" when no reply came in time, "connection"
// for any other failure to talk to BIRD (socket missing, refused, closed).
func ErrorCode(err error) string {
	var re *bird.ReplyError
	if errors.As(err, &re) {
		return strconv.Itoa(re.Code)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout"
	}
	return "connection"
}

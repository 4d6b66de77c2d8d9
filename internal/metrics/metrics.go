package metrics

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wgbird/wgbird/internal/health"
)

const namespace = "wgbird"

// durationBuckets cover a netlink read (tens of µs) up to an exec check
// or BIRD call that runs into a multi-second timeout.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics holds wgbird's metrics in their own registry. It is a
// daemon.Observer; use InstrumentBIRD to time BIRD calls.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	healthy        *prometheus.GaugeVec
	announced      *prometheus.GaugeVec
	drained        *prometheus.GaugeVec
	lastTransition *prometheus.GaugeVec
	transitions    *prometheus.CounterVec
	checkOK        *prometheus.GaugeVec
	checkDuration  *prometheus.HistogramVec
	checkFailures  *prometheus.CounterVec
	peers          *prometheus.GaugeVec
	handshakeAge   *prometheus.GaugeVec
	handshakeTime  *prometheus.GaugeVec
	birdDuration   *prometheus.HistogramVec
	birdErrors     *prometheus.CounterVec
	takeovers      *prometheus.CounterVec
	takeoverBack   *prometheus.HistogramVec

	mu     sync.Mutex
	checks map[string][]string // service -> check names last exported, to delete vanished ones
}

// New registers wgbird's metrics, the Go runtime's and the process's in a
// new registry. version labels wgbird_build_info.
func New(version string) *Metrics {
	svc := []string{"service"}
	chk := []string{"service", "check"}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		now:    time.Now,
		checks: map[string][]string{},
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "service_healthy",
			Help: "Whether every check of the service passed at its last evaluation (1) or not (0).",
		}, svc),
		announced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "service_announced",
			Help: "Whether wgbird keeps the service's BIRD protocols enabled (1) or disabled (0).",
		}, svc),
		drained: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "service_drained",
			Help: "Whether an operator drained the service (1) or not (0).",
		}, svc),
		lastTransition: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "service_last_transition_timestamp_seconds",
			Help: "Unix time of the service's last announce or withdraw.",
		}, svc),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "service_transitions_total",
			Help: "Announces and withdrawals of the service, by new state and reason class.",
		}, []string{"service", "to", "reason"}),
		checkOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "check_ok",
			Help: "Whether the check passed at the service's last evaluation (1) or failed (0).",
		}, chk),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "check_duration_seconds",
			Help:    "How long each run of the check took.",
			Buckets: durationBuckets,
		}, chk),
		checkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "check_failures_total",
			Help: "Evaluations in which the check failed.",
		}, chk),
		peers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "wireguard_peers",
			Help: "Peers configured on the service's WireGuard device at its last read.",
		}, svc),
		handshakeAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "wireguard_newest_handshake_age_seconds",
			Help: "Age of the newest handshake of any peer at the device's last read; absent when no peer ever completed one.",
		}, svc),
		handshakeTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "wireguard_newest_handshake_timestamp_seconds",
			Help: "Unix time of the newest handshake of any peer; absent when no peer ever completed one.",
		}, svc),
		birdDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "bird_command_duration_seconds",
			Help:    "Round-trip time of commands to BIRD's control socket, failed ones included.",
			Buckets: durationBuckets,
		}, []string{"command"}),
		birdErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bird_command_errors_total",
			Help: "Failed commands to BIRD, by BIRD's reply code, or timeout or connection when BIRD did not reply.",
		}, []string{"command", "code"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the version label is wgbird's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.takeovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "takeovers_total",
		Help: "Session takeovers: handshakes this server started for a client that arrived without a session, by method (keepalive, readd) and result (ok, error).",
	}, []string{"service", "method", "result"})
	m.takeoverBack = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "takeover_first_packet_seconds",
		Help:    "Time from the start of a takeover to the client's handshake response, the first packet back.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, svc)
	m.reg.MustRegister(m.takeovers, m.takeoverBack)
	m.reg.MustRegister(
		m.healthy, m.announced, m.drained, m.lastTransition, m.transitions,
		m.checkOK, m.checkDuration, m.checkFailures,
		m.peers, m.handshakeAge, m.handshakeTime,
		m.birdDuration, m.birdErrors, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// TakeoverStarted counts a takeover (continuity.Recorder).
func (m *Metrics) TakeoverStarted(service, method, result string) {
	if method == "" {
		method = "none"
	}
	m.takeovers.WithLabelValues(service, method, result).Inc()
}

// TakeoverAnswered records a takeover's time to the first packet back.
func (m *Metrics) TakeoverAnswered(service string, after time.Duration) {
	m.takeoverBack.WithLabelValues(service).Observe(after.Seconds())
}

// Gatherer returns the registry, for tests and for other exporters.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// Evaluated records one evaluation. It only updates in-memory values.
func (m *Metrics) Evaluated(e health.Evaluation) {
	s := e.Service
	m.healthy.WithLabelValues(s).Set(b2f(e.Result.Healthy()))
	m.announced.WithLabelValues(s).Set(b2f(e.State == health.Announced))
	m.drained.WithLabelValues(s).Set(b2f(e.Drained))

	names := make([]string, 0, len(e.Result.Checks))
	for _, c := range e.Result.Checks {
		names = append(names, c.Name)
		m.checkOK.WithLabelValues(s, c.Name).Set(b2f(c.OK))
		if !c.Reused {
			m.checkDuration.WithLabelValues(s, c.Name).Observe(c.Took.Seconds())
		}
		if !c.OK {
			m.checkFailures.WithLabelValues(s, c.Name).Inc()
		}
	}
	// A check that did not run this time (the WireGuard read is skipped
	// when the link is gone) must not keep showing its old result.
	m.mu.Lock()
	for _, old := range m.checks[s] {
		if !slices.Contains(names, old) {
			m.checkOK.DeleteLabelValues(s, old)
		}
	}
	m.checks[s] = names
	m.mu.Unlock()

	if e.Device == nil {
		m.peers.DeleteLabelValues(s)
		m.handshakeAge.DeleteLabelValues(s)
		m.handshakeTime.DeleteLabelValues(s)
		return
	}
	m.peers.WithLabelValues(s).Set(float64(e.Device.Peers))
	newest := e.Device.NewestHandshake
	if newest.IsZero() || newest.Unix() <= 0 {
		m.handshakeAge.DeleteLabelValues(s)
		m.handshakeTime.DeleteLabelValues(s)
		return
	}
	at := e.At
	if at.IsZero() {
		at = m.now()
	}
	m.handshakeAge.WithLabelValues(s).Set(max(at.Sub(newest).Seconds(), 0))
	m.handshakeTime.WithLabelValues(s).Set(float64(newest.UnixNano()) / 1e9)
}

// Transitioned counts one transition.
func (m *Metrics) Transitioned(service string, tr health.Transition) {
	m.transitions.WithLabelValues(service, tr.To.String(), ReasonClass(tr)).Inc()
	m.lastTransition.WithLabelValues(service).Set(float64(m.now().UnixNano()) / 1e9)
}

// Reason classes of wgbird_service_transitions_total: a fixed set, so that
// free-text reasons (which name peers, addresses and counts) cannot grow
// the number of series.
const (
	ReasonRecovered          = "recovered"            // rise healthy evaluations in a row
	ReasonUnhealthy          = "unhealthy"            // fall unhealthy evaluations in a row
	ReasonHardFailure        = "hard_failure"         // device, link or VIP gone: withdrawn at once
	ReasonUnhealthyAtStartup = "unhealthy_at_startup" // announced by BIRD at start, unhealthy at the first check
	ReasonDrained            = "drained"              // an operator's drain
	ReasonOther              = "other"
)

// ReasonClass maps a transition's cause to one of the Reason* classes.
func ReasonClass(tr health.Transition) string {
	switch tr.Cause {
	case health.CauseDrained:
		return ReasonDrained
	case health.CauseUnhealthyAtStartup:
		return ReasonUnhealthyAtStartup
	case health.CauseUnhealthy:
		return ReasonUnhealthy
	case health.CauseRecovered:
		return ReasonRecovered
	case health.CauseHardFailure:
		return ReasonHardFailure
	}
	return ReasonOther
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

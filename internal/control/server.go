package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgbird/wgbird/internal/api"
	"github.com/wgbird/wgbird/internal/drain"
)

// Daemon is what the control API needs of the daemon.
type Daemon interface {
	Services() []string
	Status() []api.ServiceStatus
	BIRDStatus() api.BIRDStatus
	SetDrain(names []string, dr *api.Drain) error
	Device(ctx context.Context, service string) (*wgtypes.Device, error)
	QuietPeriod(service string) (time.Duration, bool)
}

// Server limits: a client that stalls never holds a goroutine for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = time.Minute
	maxHeaderBytes    = 16 << 10
	maxBodyBytes      = 64 << 10
	maxReasonLen      = 512
	// closeTimeout bounds Close: requests in flight get this long.
	closeTimeout = 2 * time.Second
	// DefaultReason is a drain's reason when the request gives none.
	DefaultReason = "drained with wgbird drain"
)

// Options configure a Server.
type Options struct {
	// Socket is the control socket's path; Group its group ("" keeps the
	// process's).
	Socket string
	Group  string
	// Version is reported by GET /v1/status.
	Version string
	Log     *slog.Logger
	// Pprof serves Go's runtime profiles at /debug/pprof/ and the heap
	// after a forced GC at /debug/memory on the socket (wgbird run
	// --pprof): for finding what grows. Off by default.
	Pprof bool
}

// Server serves the control API on a unix socket.
type Server struct {
	d       Daemon
	store   *drain.Store
	log     *slog.Logger
	version string
	pprof   bool
	path    string
	info    fs.FileInfo // the socket we created, to remove only ours
	hs      *http.Server
	served  chan struct{}

	// mu serialises drain and undrain, so files and the daemon's state
	// change together.
	mu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Start creates the control socket and serves the API on it until Close.
// It fails when another wgbird answers on the socket, when the socket's
// group does not exist, or when the socket cannot be created.
func Start(opts Options, d Daemon, store *drain.Store) (*Server, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	ln, info, err := listen(opts.Socket, opts.Group)
	if err != nil {
		return nil, err
	}
	s := &Server{
		d: d, store: store, log: log, version: opts.Version, pprof: opts.Pprof,
		path: opts.Socket, info: info, served: make(chan struct{}),
	}
	s.hs = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       withPeer,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.served)
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket stopped serving", "socket", s.path, "err", err)
		}
	}()
	log.Info("control socket listening", "socket", s.path, "group", opts.Group)
	if s.pprof {
		log.Warn("serving Go runtime profiles on the control socket (--pprof)", "socket", s.path, "path", api.PathPprof)
	}
	return s, nil
}

// Socket returns the control socket's path.
func (s *Server) Socket() string { return s.path }

// Close stops serving, gives requests in flight a moment, and removes the
// socket if it is still the one Start created. It returns within a few
// seconds whatever clients do.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := s.hs.Shutdown(ctx); err != nil {
			s.hs.Close()
		}
		<-s.served
		if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.info) {
			if err := os.Remove(s.path); err != nil {
				s.closeErr = fmt.Errorf("removing control socket: %w", err)
			}
		}
	})
	return s.closeErr
}

// Handler returns the API's HTTP handler (Start serves it; tests may use
// it directly).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathStatus, s.handleStatus)
	mux.HandleFunc("POST "+api.PathDrain, s.handleDrain)
	mux.HandleFunc("POST "+api.PathUndrain, s.handleUndrain)
	mux.HandleFunc("GET "+api.PathPeers, s.handlePeers)
	if s.pprof {
		// Index serves every named profile (heap, goroutine, allocs, ...);
		// the CPU profile and the trace run for ?seconds=N, which must stay
		// below the write timeout.
		mux.HandleFunc("GET "+api.PathPprof, pprof.Index)
		mux.HandleFunc("GET "+api.PathPprof+"cmdline", pprof.Cmdline)
		mux.HandleFunc("GET "+api.PathPprof+"profile", pprof.Profile)
		mux.HandleFunc("GET "+api.PathPprof+"symbol", pprof.Symbol)
		mux.HandleFunc("GET "+api.PathPprof+"trace", pprof.Trace)
		mux.HandleFunc("GET "+api.PathMemory, handleMemory)
	}
	return mux
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	bs := s.d.BIRDStatus()
	writeJSON(w, http.StatusOK, api.StatusReply{Version: s.version, BIRD: &bs, Services: s.d.Status()})
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	var req api.DrainRequest
	if !readJSON(w, r, &req) {
		return
	}
	names, err := s.resolve(req.Services)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = DefaultReason
	}
	if len(reason) > maxReasonLen {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reason is %d bytes long, at most %d", len(reason), maxReasonLen))
		return
	}
	if strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		writeError(w, http.StatusBadRequest, errors.New("reason must not contain control characters"))
		return
	}
	dr := api.Drain{Reason: reason, Since: time.Now().Round(0).Truncate(time.Millisecond), Persist: req.Persist}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.Save(names, dr); err != nil {
		s.log.Error("drain refused: cannot store it", "services", names, "err", err)
		writeError(w, http.StatusInternalServerError, fmt.Errorf("drain not applied: storing it: %w", err))
		return
	}
	if err := s.d.SetDrain(names, &dr); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("applying drain: %w", err))
		return
	}
	s.log.Info("drained through the control socket", "services", names, "reason", reason, "persistent", req.Persist, "by", peerOf(r.Context()))
	writeJSON(w, http.StatusOK, api.DrainReply{Services: names, Drain: &dr})
}

func (s *Server) handleUndrain(w http.ResponseWriter, r *http.Request) {
	var req api.UndrainRequest
	if !readJSON(w, r, &req) {
		return
	}
	names, err := s.resolve(req.Services)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.Remove(names); err != nil {
		s.log.Error("undrain refused: cannot remove the drain files", "services", names, "err", err)
		writeError(w, http.StatusInternalServerError, fmt.Errorf("undrain not applied: removing drain files: %w", err))
		return
	}
	if err := s.d.SetDrain(names, nil); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("applying undrain: %w", err))
		return
	}
	s.log.Info("undrained through the control socket", "services", names, "by", peerOf(r.Context()))
	writeJSON(w, http.StatusOK, api.DrainReply{Services: names})
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("service")
	if name == "" {
		writeError(w, http.StatusBadRequest, errors.New("missing ?service=NAME"))
		return
	}
	qp, ok := s.d.QuietPeriod(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no service %q (configured: %v)", name, s.d.Services()))
		return
	}
	reply := api.PeersReply{Service: name, QuietPeriod: api.Duration(qp), Peers: []api.Peer{}}
	for _, st := range s.d.Status() {
		if st.Name == name {
			reply.Interface = st.Interface
		}
	}
	dev, err := s.d.Device(r.Context(), name)
	reply.ReadAt = time.Now()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reply.DeviceMissing = true
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err)
		return
	default:
		for _, p := range dev.Peers {
			peer := api.Peer{
				PublicKey:     p.PublicKey.String(),
				RxBytes:       p.ReceiveBytes,
				TxBytes:       p.TransmitBytes,
				LastHandshake: p.LastHandshakeTime,
			}
			if p.Endpoint != nil {
				peer.Endpoint = p.Endpoint.String()
			}
			reply.Peers = append(reply.Peers, peer)
		}
	}
	writeJSON(w, http.StatusOK, reply)
}

// resolve checks names against the configured services: none means all,
// duplicates are dropped.
func (s *Server) resolve(names []string) ([]string, error) {
	all := s.d.Services()
	if len(names) == 0 {
		return all, nil
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(all, n) {
			return nil, fmt.Errorf("no service %q (configured: %s)", n, strings.Join(all, ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading request: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(api.ErrorReply{Error: "encoding reply: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, api.ErrorReply{Error: err.Error()})
}

// peer is the process at the other end of a control connection, for logs.
type peer struct {
	uid, pid int32
	ok       bool
}

func (p peer) String() string {
	if !p.ok {
		return "unknown"
	}
	return fmt.Sprintf("uid %d pid %d", p.uid, p.pid)
}

type peerKey struct{}

// withPeer records the connecting process's credentials (SO_PEERCRED).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var p peer
	_ = raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			p = peer{uid: int32(cred.Uid), pid: cred.Pid, ok: true}
		}
	})
	return context.WithValue(ctx, peerKey{}, p)
}

func peerOf(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

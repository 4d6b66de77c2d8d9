package bird

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/wgbird/wgbird/internal/inotify"
)

// Reloads tells when BIRD may have restarted or read its configuration,
// without asking BIRD: inotify reports its control socket created again
// (a BIRD starting) and its configuration file opened (`birdc configure`
// reads it; so does anyone else who opens it, which costs only a look).
// Close ends a Next in progress.
type Reloads struct {
	socket string
	locate Locate
	w      *inotify.Watcher
	buf    []byte
	conf   map[string]bool // configuration files watched
}

// Locate returns the path, as this process sees it, of the configuration
// file of the BIRD listening on the socket (birdlint.Located.Watched).
type Locate func(ctx context.Context) (string, error)

// WatchReloads starts watching the BIRD listening on socketPath, whose
// configuration file locate finds. It fails when the file is not found
// (BIRD not running, among others).
func WatchReloads(ctx context.Context, socketPath string, locate Locate) (*Reloads, error) {
	conf, err := locate(ctx)
	if err != nil {
		return nil, err
	}
	w, err := inotify.New()
	if err != nil {
		return nil, err
	}
	r := &Reloads{socket: socketPath, locate: locate, w: w, buf: make([]byte, 4096), conf: map[string]bool{}}
	if err := w.Add(socketPath, inotify.Create); err != nil {
		w.Close()
		return nil, err
	}
	if err := r.watchConf(conf); err != nil {
		w.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reloads) watchConf(conf string) error {
	if r.conf[conf] {
		return nil
	}
	if err := r.w.Add(conf, inotify.Open); err != nil {
		return err
	}
	r.conf[conf] = true
	return nil
}

// Files returns the configuration files watched, for the log.
func (r *Reloads) Files() []string {
	return slices.Sorted(maps.Keys(r.conf))
}

// Sign is what Next saw.
type Sign struct {
	What string // for the log
	// Lost is set when the watch may miss reloads from now on: a new BIRD
	// whose configuration file was not found.
	Lost error
}

// Next waits for the next sign. After BIRD's socket was created it finds
// the new BIRD's configuration file (it may have been started with
// another -c) and watches that too. An error means nothing more will be
// reported.
func (r *Reloads) Next(ctx context.Context) (Sign, error) {
	evs, err := r.w.Next(r.buf)
	if err != nil {
		return Sign{}, err
	}
	var s Sign
	for _, e := range evs {
		switch {
		case e.Path == r.socket && e.Mask&inotify.Create != 0:
			s.What = "BIRD's control socket created again"
			s.Lost = r.refind(ctx)
		case s.What == "":
			s.What = "BIRD's configuration file opened"
		}
	}
	return s, nil
}

// refind finds and watches the configuration file of the BIRD that just
// bound its socket, giving it two seconds to listen on it.
func (r *Reloads) refind(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		conf, err := r.locate(ctx)
		if err == nil {
			return r.watchConf(conf)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops watching.
func (r *Reloads) Close() error { return r.w.Close() }

//go:build integration && !kernelwg

package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The wireguard-go backend of the integration tests.

var backendTools = []string{"wireguard-go"}

// backendHangs: a wireguard-go process can be stopped (SIGSTOP) and then
// answers nothing.
const backendHangs = true

// probeTimeout is the probe's wait for an answer: the default.
const probeTimeout = DefaultTimeout

type backend struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when wireguard-go exited
}

// startDevice starts wireguard-go for iface in s's namespaces and waits for
// its UAPI socket.
func startDevice(t *testing.T, s *server) {
	t.Helper()
	s.done = make(chan struct{})
	// No context: the process lives until the cleanup kills it by pid.
	s.cmd = s.inNS(context.Background(), "wireguard-go", "-f", iface)
	s.cmd.Env = append(os.Environ(), "WG_PROCESS_FOREGROUND=1")
	var log strings.Builder
	s.cmd.Stdout, s.cmd.Stderr = &log, &log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting wireguard-go: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		// ip and sh exec, so the pid is wireguard-go's own.
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	sock := filepath.Join(s.dir, iface+".sock")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go did not create %s:\n%s", sock, log.String())
		}
	}
}

// kill kills wireguard-go and waits for it.
func (s *server) kill(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Kill()
	<-s.done
}

// hang stops wireguard-go.
func (s *server) hang(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

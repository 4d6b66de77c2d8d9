package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/wgbird/wgbird/internal/api"
)

// DefaultClientTimeout bounds each request of a Client.
const DefaultClientTimeout = 10 * time.Second

// Client talks to a running wgbird over its control socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client of the socket at path; every request is
// bounded by timeout (DefaultClientTimeout if zero) and by its context.
func NewClient(path string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:          1,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &Client{socket: path, hc: &http.Client{Transport: tr, Timeout: timeout}}
}

// Socket returns the socket path the client talks to.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// NotRunningError: nothing listens on the control socket.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("wgbird is not running (no answer on %s)", e.Socket)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// PermissionError: the socket exists and this user may not connect.
type PermissionError struct {
	Socket string
	Err    error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("permission denied on %s: run as root or as a member of the socket's group (control.group)", e.Socket)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// APIError is an error answer of the daemon.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string { return e.Message }

// Status returns the daemon's version and every service's status.
func (c *Client) Status(ctx context.Context) (api.StatusReply, error) {
	var r api.StatusReply
	err := c.do(ctx, http.MethodGet, api.PathStatus, nil, &r)
	return r, err
}

// Drain drains services (all when none are named).
func (c *Client) Drain(ctx context.Context, req api.DrainRequest) (api.DrainReply, error) {
	var r api.DrainReply
	err := c.do(ctx, http.MethodPost, api.PathDrain, req, &r)
	return r, err
}

// Undrain undrains services (all when none are named).
func (c *Client) Undrain(ctx context.Context, req api.UndrainRequest) (api.DrainReply, error) {
	var r api.DrainReply
	err := c.do(ctx, http.MethodPost, api.PathUndrain, req, &r)
	return r, err
}

// Peers returns the WireGuard peers of a service with their counters.
func (c *Client) Peers(ctx context.Context, service string) (api.PeersReply, error) {
	var r api.PeersReply
	err := c.do(ctx, http.MethodGet, api.PathPeers+"?service="+url.QueryEscape(service), nil, &r)
	return r, err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	// The host is ignored: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://wgbird"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading wgbird's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.ErrorReply
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("wgbird answered %s", resp.Status)
		}
		return &APIError{StatusCode: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding wgbird's answer: %w", err)
	}
	return nil
}

func (c *Client) transportError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTDIR):
			return &NotRunningError{Socket: c.socket, Err: err}
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return &PermissionError{Socket: c.socket, Err: err}
		}
	}
	return fmt.Errorf("talking to wgbird on %s: %w", c.socket, err)
}

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// icmpSocket opens a raw ICMP socket inside namespace ns. The socket stays
// in that namespace for its whole life, whichever thread uses it.
func icmpSocket(ns string) (*net.IPConn, error) {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("opening namespace %s: %w", ns, err)
	}
	defer target.Close()
	type result struct {
		fd  int
		err error
	}
	res := make(chan result, 1)
	// Switch namespaces on a thread of its own: if switching back fails,
	// the goroutine ends still locked and the runtime discards the thread.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, fmt.Errorf("opening own namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, fmt.Errorf("entering namespace %s: %w", ns, err)}
			return
		}
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.IPPROTO_ICMP)
		if err != nil {
			err = fmt.Errorf("opening ICMP socket in %s: %w", ns, err)
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		res <- result{fd, err}
	}()
	r := <-res
	if r.err != nil {
		return nil, r.err
	}
	fd := r.fd
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("wrapping ICMP socket: %w", err)
	}
	ipc, ok := c.(*net.IPConn)
	if !ok {
		c.Close()
		return nil, errors.New("ICMP socket is not an IPConn")
	}
	return ipc, nil
}

var pingID atomic.Uint32

// ping sends one ICMP echo request to dst from namespace ns and waits up
// to timeout for the reply; it returns the round-trip time.
func ping(ns string, dst netip.Addr, timeout time.Duration) (time.Duration, error) {
	c, err := icmpSocket(ns)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	id := uint16(os.Getpid()) ^ uint16(pingID.Add(1)*7919)
	const seq = 1
	msg := echoRequest(id, seq)
	start := time.Now()
	if err := c.SetDeadline(start.Add(timeout)); err != nil {
		return 0, err
	}
	if _, err := c.WriteToIP(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return 0, fmt.Errorf("pinging %s: %w", dst, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromIP(buf)
		if err != nil {
			return 0, fmt.Errorf("pinging %s: %w", dst, err)
		}
		if src, ok := netip.AddrFromSlice(from.IP); !ok || src.Unmap() != dst {
			continue
		}
		if rid, rseq, ok := parseEchoReply(buf[:n]); ok && rid == id && rseq == seq {
			return time.Since(start), nil
		}
	}
}

// icmpChecksum is the Internet checksum (RFC 1071) of b.
func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// PingTunnel pings the servers' inner tunnel address from the client, so
// the echo travels through the client's WireGuard tunnel to whichever
// server the router picks.
func (l *Lab) PingTunnel(timeout time.Duration) (time.Duration, error) {
	return ping(l.NS("client"), TunnelServer.Addr(), timeout)
}

// PingTunnelUntil pings through the tunnel every step until a reply
// comes, and returns when the successful echo was sent.
func (l *Lab) PingTunnelUntil(ctx context.Context, step time.Duration) (time.Time, error) {
	for {
		sent := time.Now()
		if _, err := l.PingTunnel(step); err == nil {
			return sent, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("no reply through the tunnel: %w", ctx.Err())
		case <-time.After(time.Until(sent.Add(step))):
		}
	}
}

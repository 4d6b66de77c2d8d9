package labjudge

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOutages(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var echoes []Echo
	// 0-400 answered, 500-1400 lost (1000 answered 3 s late: still lost),
	// 1500-1900 answered, 2000 on lost.
	for i := 0; i < 25; i++ {
		e := Echo{Seq: i, Sent: at(i * 100)}
		switch {
		case i == 10:
			e.Reply = e.Sent.Add(3 * time.Second)
		case i < 5, i >= 15 && i < 20:
			e.Reply = e.Sent.Add(time.Millisecond)
		}
		echoes = append(echoes, e)
	}
	got := Outages(echoes, t0, time.Time{})
	want := []Outage{{From: at(500), To: at(1500), Lost: 10}, {From: at(2000), Lost: 5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Outages (-want +got):\n%s", diff)
	}
	if d := got[0].Duration(); d != time.Second {
		t.Errorf("duration %s, want 1s", d)
	}
	if o := LongestOutage(echoes, t0, at(2000)); o.Duration() != time.Second || o.Lost != 10 {
		t.Errorf("LongestOutage before the open run: %+v", o)
	}
	if o := LongestOutage(echoes, t0, time.Time{}); !o.To.IsZero() {
		t.Errorf("LongestOutage with an open run: %+v, want it open", o)
	}
	if o := LongestOutage(echoes, t0, at(500)); o.Duration() != 0 {
		t.Errorf("LongestOutage without loss: %+v", o)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	req := echoRequest(0x1234, 77)
	if icmpChecksum(req) != 0 {
		t.Errorf("echo request checksum does not verify")
	}
	reply := append([]byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 100, 64, 0, 1, 100, 64, 0, 2}, req...)
	reply[20] = 0 // echo reply
	id, seq, ok := parseEchoReply(reply)
	if !ok || id != 0x1234 || seq != 77 {
		t.Errorf("parseEchoReply = %#x, %d, %v", id, seq, ok)
	}
	if _, _, ok := parseEchoReply(req); ok {
		t.Errorf("an echo request parsed as a reply")
	}
}

func TestICMPChecksum(t *testing.T) {
	// An echo request with its checksum filled in sums to zero.
	msg := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'h', 'i', '!'}
	c := icmpChecksum(msg)
	msg[2], msg[3] = byte(c>>8), byte(c)
	if got := icmpChecksum(msg); got != 0 {
		t.Errorf("checksum over a checksummed message = %#x, want 0", got)
	}
}

package drain

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgbird/wgbird/internal/api"
)

// sample is one read of the counters: peer key → rx+tx (rx carries all).
type sample map[string]int64

func reply(at time.Time, period time.Duration, s sample) api.PeersReply {
	r := api.PeersReply{Service: "wg0", QuietPeriod: api.Duration(period), ReadAt: at, Peers: []api.Peer{}}
	for k, v := range s {
		r.Peers = append(r.Peers, api.Peer{PublicKey: k, Endpoint: "198.18.0.2:4000", RxBytes: v})
	}
	return r
}

func TestTrafficQuiet(t *testing.T) {
	const period = 3 * time.Second
	t0 := time.Unix(1700000000, 0)
	tests := []struct {
		name    string
		samples []sample // one a second
		// want: Quiet after each sample
		want []bool
	}{
		{
			name:    "no peers: quiet after one period of reads",
			samples: []sample{{}, {}, {}, {}, {}},
			want:    []bool{false, false, false, true, true},
		},
		{
			name:    "unchanged from the start: history unknown, so one period",
			samples: []sample{{"a": 100}, {"a": 100}, {"a": 100}, {"a": 100}},
			want:    []bool{false, false, false, true},
		},
		{
			name:    "traffic then silence: quiet one period after the last change",
			samples: []sample{{"a": 100}, {"a": 200}, {"a": 300}, {"a": 300}, {"a": 300}, {"a": 300}},
			want:    []bool{false, false, false, false, false, true},
		},
		{
			name:    "one peer quiet, one busy: not quiet",
			samples: []sample{{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 1, "b": 5}},
			want:    []bool{false, false, false, false, false},
		},
		{
			name:    "a new peer resets the wait",
			samples: []sample{{"a": 1}, {"a": 1}, {"a": 1}, {"a": 1, "b": 7}, {"a": 1, "b": 7}, {"a": 1, "b": 7}, {"a": 1, "b": 7}},
			want:    []bool{false, false, false, false, false, false, true},
		},
		{
			name:    "a removed busy peer no longer counts",
			samples: []sample{{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1}},
			want:    []bool{false, false, false, true},
		},
		{
			name:    "counters going back (device re-created) are a change",
			samples: []sample{{"a": 500}, {"a": 500}, {"a": 500}, {"a": 20}, {"a": 20}, {"a": 20}, {"a": 20}},
			want:    []bool{false, false, false, false, false, false, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTraffic()
			var got []bool
			for i, s := range tt.samples {
				got = append(got, tr.Observe(reply(t0.Add(time.Duration(i)*time.Second), period, s)).Quiet)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("quiet after each sample (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTrafficActive: the active peers, busiest first, with their bytes
// within the window and how long they have been idle.
func TestTrafficActive(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tr := NewTraffic()
	tr.Window = 2 * time.Second
	samples := []sample{
		{"a": 0, "b": 0, "c": 0},
		{"a": 100, "b": 10, "c": 0},
		{"a": 300, "b": 20, "c": 0},
		{"a": 700, "b": 20, "c": 0},
	}
	var st TrafficState
	for i, s := range samples {
		st = tr.Observe(reply(t0.Add(time.Duration(i)*time.Second), 10*time.Second, s))
	}
	want := TrafficState{
		At: t0.Add(3 * time.Second), Period: 10 * time.Second, Window: 2 * time.Second, Peers: 3,
		Active: []ActivePeer{
			{PublicKey: "a", Endpoint: "198.18.0.2:4000", Recent: 600},                   // 700-100 within 2 s
			{PublicKey: "b", Endpoint: "198.18.0.2:4000", Idle: time.Second, Recent: 10}, // 20-10
			// c never moved: not listed, though not yet known quiet.
		},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
}

func TestTrafficDeviceMissing(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tr := NewTraffic()
	tr.Observe(reply(t0, time.Second, sample{"a": 5}))
	r := reply(t0.Add(time.Second), time.Second, nil)
	r.DeviceMissing = true
	st := tr.Observe(r)
	if !st.Quiet || !st.DeviceMissing || st.Peers != 0 {
		t.Errorf("state = %+v, want quiet with the device missing", st)
	}
}

// A drained server keeps sending handshake initiations to clients that
// went elsewhere: its tx moves, nothing comes in, and that is quiet.
func TestTrafficQuietIgnoresOwnRetries(t *testing.T) {
	const period = 2 * time.Second
	t0 := time.Unix(1700000000, 0)
	tr := NewTraffic()
	var st TrafficState
	for i := range 4 {
		r := reply(t0.Add(time.Duration(i)*time.Second), period, sample{"a": 500})
		r.Peers[0].TxBytes = int64(148 * i) // one initiation a second
		st = tr.Observe(r)
	}
	if !st.Quiet || len(st.Active) != 0 {
		t.Errorf("state = %+v, want quiet with no active peer", st)
	}
}

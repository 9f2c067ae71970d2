package imagegc

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func ids(imgs []Image) []string {
	out := []string{}
	for _, img := range imgs {
		out = append(out, img.ID)
	}
	return out
}

func TestEvictionOrder(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name string
		imgs []Image
		want []string
	}{
		{"least recently used first", []Image{
			{ID: "b", LastUsed: at(5)},
			{ID: "a", LastUsed: at(1)},
			{ID: "c", LastUsed: at(3)},
		}, []string{"a", "c", "b"}},
		{"then first detected, then ID", []Image{
			{ID: "z", LastUsed: at(1), FirstDetected: at(0)},
			{ID: "y", LastUsed: at(1), FirstDetected: at(-5)},
			{ID: "x", LastUsed: at(1), FirstDetected: at(0)},
		}, []string{"y", "x", "z"}},
		{"never seen in use: containerd's record time stands for last use", []Image{
			{ID: "used-recently", LastUsed: at(10)},
			{ID: "pulled-long-ago", Updated: at(-1000)},
			{ID: "pulled-now", Updated: at(20)},
		}, []string{"pulled-long-ago", "used-recently", "pulled-now"}},
		{"in use, pinned and protected never go", []Image{
			{ID: "used", InUse: true},
			{ID: "pinned", Pinned: true},
			{ID: "pause", Protected: true},
			{ID: "free"},
		}, []string{"free"}},
	} {
		if got := ids(EvictionOrder(tc.imgs)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	now := t0
	old := now.Add(-time.Hour)
	order := []Image{
		{ID: "a", Size: 100, FirstDetected: old},
		{ID: "young", Size: 1000, FirstDetected: now.Add(-time.Minute)},
		{ID: "b", Size: 50, FirstDetected: old},
		{ID: "c", Size: 70, FirstDetected: old},
	}
	for _, tc := range []struct {
		name      string
		minAge    time.Duration
		toFree    int64
		want      []string
		wantFreed int64
	}{
		{"stops once enough is freed", 2 * time.Minute, 120, []string{"a", "b"}, 150},
		{"exactly enough", 2 * time.Minute, 100, []string{"a"}, 100},
		{"too young is skipped, not a stop", 2 * time.Minute, 1000, []string{"a", "b", "c"}, 220},
		{"no minimum age", 0, 1000, []string{"a", "young"}, 1100},
		{"nothing to free", 2 * time.Minute, 0, nil, 0},
		{"all old enough (prune)", 2 * time.Minute, -1, []string{"a", "b", "c"}, 220},
	} {
		got, freed := Select(order, now, tc.minAge, tc.toFree)
		if !slices.Equal(ids(got), tc.want) || freed != tc.wantFreed {
			t.Errorf("%s: got %v freeing %d, want %v freeing %d", tc.name, ids(got), freed, tc.want, tc.wantFreed)
		}
	}
}

func TestUsage(t *testing.T) {
	p := Policy{HighThresholdPercent: 85, LowThresholdPercent: 80}
	for _, tc := range []struct {
		name                string
		capacity, available int64
		p                   Policy
		percent             int
		toFree              int64
		over                bool
	}{
		{"below high", 1000, 200, p, 80, 0, false},
		{"at high", 1000, 150, p, 85, 50, true}, // down to 80%: 200 available
		{"full", 1000, 0, p, 100, 200, true},
		{"rounds in available's favour", 1000, 151, p, 85, 49, true},
		{"available above capacity", 1000, 2000, p, 0, 0, false},
		{"100 disables", 1000, 0, Policy{HighThresholdPercent: 100, LowThresholdPercent: 80}, 100, 0, false},
		{"1% / 0%: everything unused", 1000, 900, Policy{HighThresholdPercent: 1, LowThresholdPercent: 0}, 10, 100, true},
		{"no capacity", 0, 0, p, 0, 0, false},
	} {
		percent, toFree, over := Usage(tc.capacity, tc.available, tc.p)
		if percent != tc.percent || toFree != tc.toFree || over != tc.over {
			t.Errorf("%s: got %d%%, free %d, over %v; want %d%%, free %d, over %v", tc.name, percent, toFree, over, tc.percent, tc.toFree, tc.over)
		}
	}
}

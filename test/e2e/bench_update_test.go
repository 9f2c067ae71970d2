package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// benchLinkRate is the link the update benchmark pulls over: 4 MiB/s, a good edge uplink,
// so that the 3 MiB image takes about a second, as a bigger one on a slower link would take
// minutes.
const benchLinkRate = 4 << 20

// benchUpdate measures an image update as a device on a slow link sees it: how long the new
// image took to pull (the old version served all that time) and how long the pod served
// nothing (the old version's last answer to the new version's first). Before pull-first, the
// downtime was both together.
func benchUpdate(b *testing.B) {
	withT(b, "update", func(t *testing.T) {
		reg := startRegistry(t, "", "")
		proxy := throttledProxy(t, reg, benchLinkRate)
		d := benchDaemon(t)
		bc := newBenchCtx(t, d)
		pod := func(version, image string) string {
			return updatePod(version, image, "", "")
		}
		d.writeManifest("web.yaml", pod("v0", "minipod.local/busybox:1.35"))
		p := d.waitRunning("web", 60*time.Second)
		d.waitServes(p.Status.PodIP, "v0")
		var pulls, downs []float64
		for i := 1; i <= benchRuns()/6+2; i++ {
			tag := fmt.Sprintf("test/big:%d", i)
			pushBigImage(t, reg, tag)
			old := bc.list()["web"]
			oldIP, oldRev := old.Status.PodIP, old.Annotations["minipod.io/revision"]
			want := fmt.Sprintf("v%d", i)
			start := bc.drop(map[string]string{"web.yaml": pod(want, proxy+"/"+tag)})
			// The old version's last answer.
			var lastOld time.Time
			for end := time.Now().Add(2 * time.Minute); ; time.Sleep(pollSingle) {
				if servesWithin(oldIP, 200*time.Millisecond) != fmt.Sprintf("v%d", i-1) {
					break
				}
				lastOld = time.Now()
				if time.Now().After(end) {
					t.Fatalf("update %d: the old version still serves after 2 min", i)
				}
			}
			// The new version's first, at the address its status gives.
			var firstNew time.Time
			bc.poll(2*time.Minute, pollSingle, "the new version serving", func() (bool, string) {
				p := bc.list()["web"]
				if p == nil || p.Annotations["minipod.io/revision"] == oldRev || p.Status.PodIP == "" {
					return false, "not yet"
				}
				if got := servesWithin(p.Status.PodIP, 200*time.Millisecond); got != want {
					return false, got
				}
				firstNew = time.Now()
				return true, ""
			})
			pulls = append(pulls, ms(lastOld.Sub(start)))
			downs = append(downs, ms(firstNew.Sub(lastOld)))
		}
		record(b, "update-pull", fmt.Sprintf("image update, %d MiB/s link: file written → old version's last answer", benchLinkRate>>20), "ms", pulls, "", "the pull, while the old version served: a 3 MiB layer, each update a new tag with new content")
		record(b, "update-downtime", "image update: old version's last answer → new version's first (downtime)", "ms", downs, "",
			"without pull-first the downtime was this plus the pull above")
	})
}

// throttledProxy serves the registry on another loopback port, sending blobs at rate bytes
// per second: a slow link.
func throttledProxy(t *testing.T, r *registry, rate int) string {
	t.Helper()
	target, _ := url.Parse("http://" + r.addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodGet && strings.Contains(resp.Request.URL.Path, "/blobs/") {
			resp.Body = &slowBody{ReadCloser: resp.Body, rate: rate, start: time.Now()}
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// slowBody reads at most rate bytes per second since start.
type slowBody struct {
	io.ReadCloser
	rate  int
	start time.Time
	n     int
}

func (s *slowBody) Read(p []byte) (int, error) {
	if len(p) > s.rate/20 {
		p = p[:s.rate/20]
	}
	// The link's pace: a read waits until the bytes so far fit the rate.
	if due := s.start.Add(time.Duration(float64(s.n) / float64(s.rate) * float64(time.Second))); time.Now().Before(due) {
		time.Sleep(time.Until(due))
	}
	n, err := s.ReadCloser.Read(p)
	s.n += n
	return n, err
}

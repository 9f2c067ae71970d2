package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/api"
)

// watchStatus prints the table, then a row whenever a pod's row changes (or it goes), like
// kubectl get pods -w, until Ctrl-C. The daemon's event stream says when to look again; a slow
// tick catches changes that raise no event (a readiness probe passing again, say).
func watchStatus(ctx context.Context, c *api.Client, name string, wide bool, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	wake := make(chan struct{}, 1)
	go func() {
		_, _ = c.Events(ctx, "", "", true, func(corev1.Event) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	tw := tabwriter.NewWriter(stdout, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, tableHeader(wide))
	last := map[string]podRow{}
	for {
		list, err := c.Pods(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		seen := map[string]bool{}
		for i := range list.Items {
			p := &list.Items[i]
			if name != "" && !matchesName(namespaceOf(p), p.Name, name) {
				continue
			}
			key := namespaceOf(p) + "/" + p.Name + "@" + p.Annotations[manifestAnnotation]
			seen[key] = true
			r := makeRow(p, now)
			old, ok := last[key]
			if ok && old.Ready == r.Ready && old.Status == r.Status && old.Restarts == r.Restarts && old.IP == r.IP && old.Revision == r.Revision {
				continue
			}
			last[key] = r
			fmt.Fprintln(tw, r.line(wide))
		}
		for key, r := range last {
			if !seen[key] {
				delete(last, key)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, "0/0", "Gone", r.Restarts, r.Age)
			}
		}
		tw.Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		}
	}
}

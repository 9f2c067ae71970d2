package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/api"
)

// cmdRollout runs `rollout history NAME` and `rollout retry NAME`.
func cmdRollout(ctx context.Context, c *api.Client, p *parsedArgs, stdout io.Writer) error {
	if len(p.positional) != 2 {
		return fmt.Errorf("usage: minipodctl rollout history|retry NAME")
	}
	list, err := c.Pods(ctx)
	if err != nil {
		return err
	}
	pod, err := resolvePod(list, p.positional[1])
	if err != nil {
		return err
	}
	ns := namespaceOf(pod)
	switch p.positional[0] {
	case "history":
		ro, err := c.Rollout(ctx, ns, pod.Name)
		if err != nil {
			return err
		}
		printHistory(stdout, ro, time.Now())
		return nil
	case "retry":
		if err := c.RetryRollout(ctx, ns, pod.Name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pod %s: the rolled-back revision will be tried again\n", escape(pod.Name))
		return nil
	}
	return fmt.Errorf("unknown rollout command %q (use history or retry)", p.positional[0])
}

// printHistory lists the revisions, oldest first, as `kubectl rollout history` does, with
// when each ran and how it ended.
func printHistory(out io.Writer, ro *api.Rollout, now time.Time) {
	tw := tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tSTARTED\tREADY\tENDED\tOUTCOME")
	ago := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return formatAge(metav1.NewTime(*t), now) + " ago"
	}
	for _, h := range ro.History {
		mark := ""
		if h.Revision == ro.Current && h.Ended == nil {
			mark = " (current)"
		}
		outcome := h.Outcome
		if h.Message != "" {
			outcome += ": " + h.Message
		}
		started := h.Started
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", escape(h.Revision), mark, ago(&started), ago(h.Ready), ago(h.Ended), escape(outcome))
	}
	tw.Flush()
}

// describeRevisions is describe's Revisions section.
func describeRevisions(out io.Writer, ro *api.Rollout) {
	if ro == nil || ro.Current == "" {
		return
	}
	w := tabwriter.NewWriter(out, 0, 8, 1, ' ', 0)
	fmt.Fprintln(w, "Revisions:")
	kv := func(k, v string) { fmt.Fprintf(w, "  %s:\t%s\n", k, escape(v)) }
	kv("Current", ro.Current)
	if ro.Desired != "" && ro.Desired != ro.Current {
		kv("In the file", ro.Desired)
	}
	if ro.Good != "" {
		kv("Last good", ro.Good)
	}
	if ro.Failed != "" {
		kv("Failed", strings.TrimSpace(ro.Failed+": "+ro.FailedReason+": "+ro.FailedMessage))
	}
	if ro.Pending != "" {
		kv("Pending", ro.Pending+": "+ro.PendingMessage)
	}
	if ro.Rollback {
		kv("Rollback", "on, progress deadline "+ro.ProgressDeadline)
	} else {
		kv("Rollback", "off")
	}
	w.Flush()
}

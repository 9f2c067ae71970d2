package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/api"
)

// cmdImages lists the daemon's images, or with "prune" removes the unused ones now.
func cmdImages(ctx context.Context, c *api.Client, p *parsedArgs, stdout io.Writer) error {
	output := p.values["output"]
	switch output {
	case "", "table", "json":
	default:
		return fmt.Errorf("unknown output format %q (use table or json)", output)
	}
	switch {
	case len(p.positional) == 0:
		list, err := c.Images(ctx)
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(stdout, list)
		}
		printImages(stdout, list.Items, time.Now())
		return nil
	case len(p.positional) == 1 && p.positional[0] == "prune":
		out, err := c.PruneImages(ctx)
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(stdout, out)
		}
		for _, img := range out.Removed {
			for _, n := range img.Names {
				fmt.Fprintf(stdout, "Deleted: %s\n", escape(n))
			}
		}
		fmt.Fprintf(stdout, "Total reclaimed space: %s\n", formatSize(out.Freed))
		return nil
	}
	return fmt.Errorf("unknown images command %q (use: images, images prune)", strings.Join(p.positional, " "))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

// printImages prints one line per image name, as crictl images does, with what garbage
// collection knows: last use, pods, pinned.
func printImages(out io.Writer, imgs []api.Image, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "IMAGE\tIMAGE ID\tSIZE\tLAST USED\tPINNED\tPODS")
	for _, img := range imgs {
		id := strings.TrimPrefix(img.ID, "sha256:")
		if len(id) > 13 {
			id = id[:13]
		}
		used := "-"
		switch {
		case img.InUse:
			used = "in use"
		case img.LastUsed != nil:
			used = formatAge(metav1.NewTime(*img.LastUsed), now) + " ago"
		}
		pinned := "no"
		if img.Pinned {
			pinned = "yes"
		}
		pods := "<none>"
		if len(img.Pods) > 0 {
			pods = strings.Join(img.Pods, ",")
		}
		for _, n := range img.Names {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", escape(n), id, formatSize(img.Size), used, pinned, escape(pods))
		}
	}
	w.Flush()
}

// formatSize is a size in binary units, "4.2 MiB".
func formatSize(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

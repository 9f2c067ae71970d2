// Command mkimage writes the images minipod needs without a registry, as OCI archives that
// `ctr images import` and minipod accept:
//
//	mkimage busybox [-name REF] [-busybox PATH] -o FILE.tar
//	mkimage pause [-name REF] -pause PATH -o FILE.tar
//
// "-o -" writes to standard output.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/minipod/minipod/pkg/imagebuild"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mkimage busybox|pause [flags] -o FILE")
	}
	fs := flag.NewFlagSet("mkimage "+args[0], flag.ContinueOnError)
	out := fs.String("o", "", "output file, - for standard output")
	var img imagebuild.Image
	var err error
	switch args[0] {
	case "busybox":
		name := fs.String("name", imagebuild.DefaultBusyboxName, "image reference")
		bb := fs.String("busybox", "/bin/busybox", "static busybox binary")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		img, err = imagebuild.Busybox(*name, *bb)
	case "pause":
		name := fs.String("name", imagebuild.DefaultPauseName, "image reference")
		p := fs.String("pause", "", "minipod-pause binary")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		img, err = imagebuild.Pause(*name, *p)
	default:
		return fmt.Errorf("unknown image %q: busybox or pause", args[0])
	}
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-o FILE is required")
	}
	if *out == "-" {
		bw := bufio.NewWriter(stdout)
		if err := imagebuild.WriteOCI(bw, img); err != nil {
			return err
		}
		return bw.Flush()
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := imagebuild.WriteOCI(f, img); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, *out)
}

// Command mkimage writes the images minipod needs without a registry, as OCI
// image-layout tar archives that `ctr -n minipod images import FILE.tar` and
// the minipod daemon accept:
//
//	mkimage busybox [-name REF] [-busybox PATH] -o FILE.tar
//	mkimage pause [-name REF] -pause PATH -o FILE.tar
//
// "-o -" writes the archive to standard output. The busybox image is made
// from a static busybox (Debian's busybox-static), the pause image from
// minipod-pause. The archives are reproducible. See package
// github.com/minipod/minipod/pkg/imagebuild.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/minipod/minipod/pkg/imagebuild"
)

const usage = `usage:
  mkimage busybox [-name REF] [-busybox PATH] -o FILE.tar
  mkimage pause [-name REF] -pause PATH -o FILE.tar
"-o -" writes to standard output.
`

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(args []string, stdout *os.File, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	kind := args[0]
	fs := flag.NewFlagSet("mkimage "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `FILE` (- for standard output)")
	name := fs.String("name", "", "image `REF`erence (default "+defaultName(kind)+")")
	var busybox, pause *string
	switch kind {
	case "busybox":
		busybox = fs.String("busybox", imagebuild.DefaultBusyboxPath, "static busybox `PATH`")
	case "pause":
		pause = fs.String("pause", "", "static pause program `PATH` (minipod-pause)")
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	default:
		fmt.Fprintf(stderr, "mkimage: unknown image %q\n", kind)
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *out == "" {
		return errors.New("-o FILE is required (- for standard output)")
	}

	var img imagebuild.Image
	var err error
	if busybox != nil {
		img, err = imagebuild.Busybox(*name, *busybox)
	} else {
		if *pause == "" {
			return errors.New("-pause PATH is required")
		}
		img, err = imagebuild.Pause(*name, *pause)
	}
	if err != nil {
		return err
	}

	var res imagebuild.Result
	if *out == "-" {
		if st, err := stdout.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return errors.New("refusing to write a tar archive to a terminal")
		}
		bw := bufio.NewWriterSize(stdout, 1<<16)
		if res, err = imagebuild.Build(bw, img); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	} else if res, err = imagebuild.WriteOCIFile(*out, img); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mkimage: %s %s (%s/%s) -> %s\n", img.Name, res.Index.Digest, res.Platform.OS, res.Platform.Architecture, *out)
	return nil
}

func defaultName(kind string) string {
	if kind == "pause" {
		return imagebuild.DefaultPauseName
	}
	return "minipod.local/busybox:<busybox version>"
}

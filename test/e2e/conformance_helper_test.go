package e2e

// helperSource is a small stand-in for the parts of Kubernetes' agnhost test image that the
// ported conformance scenarios use, built at test time into the conformance images (see
// conformanceImages). Only the standard library: it builds offline in a few seconds, and needs
// no module of its own beyond a go.mod line. Each subcommand prints what agnhost prints, since
// the scenarios compare output:
//
//	pause                 print "Paused", wait for SIGTERM or SIGINT, exit 0
//	entrypoint-tester     print os.Args as fmt.Println does ("[/agnhost entrypoint-tester a b]")
//	liveness              HTTP on :8080: /healthz is 200 for 10 s after start, then 500;
//	                      /redirect?loc=URL answers 302 to URL
//	test-webserver        HTTP on --port (80): 200 "hello" on every path
//	netexec               HTTP (or HTTPS with --tls-cert-file, a certificate made at start) on
//	                      --http-port (8080): /echo?msg=M answers M, /dial?host=H&port=P&request=R
//	                      GETs http://H:P/R, /hostname, /healthz; every request is logged as
//	                      "GET <uri>"
//	grpc-health-checking  gRPC grpc.health.v1.Health/Check answering SERVING on --port (5000),
//	                      over cleartext HTTP/2, and HTTP on --http-port (8080)
//	mounttest             agnhost's mounttest flags, in agnhost's order and formats
//	etc-hosts             print /etc/hosts
//	nonewprivs            print "Effective uid: N" (also when the program is called as nnp)
const helperSource = `package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if filepath.Base(os.Args[0]) == "nnp" {
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: agnhost SUBCOMMAND [FLAGS]")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "pause":
		pause()
	case "entrypoint-tester":
		fmt.Println(os.Args)
	case "liveness":
		liveness()
	case "test-webserver":
		testWebserver(args)
	case "netexec":
		netexec(args)
	case "grpc-health-checking":
		grpcHealth(args)
	case "mounttest":
		os.Exit(mounttest(args))
	case "etc-hosts":
		b, err := os.ReadFile("/etc/hosts")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "nonewprivs":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
}

func pause() {
	fmt.Println("Paused")
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	s := <-c
	fmt.Printf("Shutting down after receiving signal: %s.\n", s)
}

func liveness() {
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		d := time.Since(started)
		if d.Seconds() > 10 {
			w.WriteHeader(500)
			fmt.Fprintf(w, "error: %v", d.Seconds())
			return
		}
		w.WriteHeader(200)
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		loc, err := url.QueryUnescape(r.URL.Query().Get("loc"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, loc, http.StatusFound)
	})
	fatal(http.ListenAndServe(":8080", mux))
}

func testWebserver(args []string) {
	fs := flag.NewFlagSet("test-webserver", flag.ExitOnError)
	port := fs.Int("port", 80, "")
	fs.Parse(args)
	fatal(http.ListenAndServe(fmt.Sprintf(":%d", *port), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
	})))
}

func netexec(args []string) {
	fs := flag.NewFlagSet("netexec", flag.ExitOnError)
	port := fs.Int("http-port", 8080, "")
	fs.Int("udp-port", 8081, "")
	cert := fs.String("tls-cert-file", "", "")
	fs.String("tls-private-key-file", "", "")
	fs.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.FormValue("msg"))
	})
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, r *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprint(w, h)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		target := fmt.Sprintf("http://%s/%s", joinHostPort(r.FormValue("host"), r.FormValue("port")), r.FormValue("request"))
		out := map[string][]string{}
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(target)
		if err != nil {
			out["errors"] = []string{err.Error()}
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out["responses"] = []string{string(b)}
		}
		json.NewEncoder(w).Encode(out)
	})
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("GET %s\n", r.URL.RequestURI())
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: fmt.Sprintf(":%d", *port), Handler: logged}
	if *cert == "" {
		fatal(srv.ListenAndServe())
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{selfSigned()}}
	fatal(srv.ListenAndServeTLS("", ""))
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fatal(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	fatal(err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// grpcHealth answers grpc.health.v1.Health/Check with SERVING for every service. A gRPC call
// is an HTTP/2 POST whose body is a 5-byte prefix (compressed flag, big-endian length) and a
// protobuf message; the answer's status goes in the grpc-status trailer. HealthCheckResponse
// {status: SERVING} is field 1, varint 1: the bytes 0x08 0x01.
func grpcHealth(args []string) {
	fs := flag.NewFlagSet("grpc-health-checking", flag.ExitOnError)
	port := fs.Int("port", 5000, "")
	httpPort := fs.Int("http-port", 8080, "")
	fs.Parse(args)
	go func() {
		fatal(http.ListenAndServe(fmt.Sprintf(":%d", *httpPort), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		})))
	}()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		if r.URL.Path != "/grpc.health.v1.Health/Check" {
			w.WriteHeader(200)
			w.Header().Set("Grpc-Status", "12")
			return
		}
		msg := []byte{0x08, 0x01}
		frame := make([]byte, 5, 5+len(msg))
		binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
		w.WriteHeader(200)
		w.Write(append(frame, msg...))
		w.Header().Set("Grpc-Status", "0")
	})
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Addr: fmt.Sprintf(":%d", *port), Handler: h, Protocols: &protocols}
	fatal(srv.ListenAndServe())
}

const expectedContent = "mount-tester new file\n"

// mounttest does what agnhost's mounttest does, in its order: file system type, new files,
// mode, permissions, owner, content, content in a loop.
func mounttest(args []string) int {
	fs := flag.NewFlagSet("mounttest", flag.ContinueOnError)
	fsType := fs.String("fs_type", "", "")
	new0644 := fs.String("new_file_0644", "", "")
	new0666 := fs.String("new_file_0666", "", "")
	new0660 := fs.String("new_file_0660", "", "")
	new0777 := fs.String("new_file_0777", "", "")
	fileMode := fs.String("file_mode", "", "")
	filePerm := fs.String("file_perm", "", "")
	fileOwner := fs.String("file_owner", "", "")
	fileContent := fs.String("file_content", "", "")
	loop := fs.String("file_content_in_loop", "", "")
	retry := fs.Int("retry_time", 180, "")
	breakOnExpected := fs.Bool("break_on_expected_content", true, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	syscall.Umask(0)
	failed := false
	check := func(err error) {
		if err != nil {
			fmt.Println(err)
			failed = true
		}
	}
	if *fsType != "" {
		var st syscall.Statfs_t
		if err := syscall.Statfs(*fsType, &st); err != nil {
			check(fmt.Errorf("error from statfs(%q): %v", *fsType, err))
		} else if st.Type == 0x01021994 {
			fmt.Printf("mount type of %q: tmpfs\n", *fsType)
		} else {
			fmt.Printf("mount type of %q: %v\n", *fsType, st.Type)
		}
	}
	for _, nf := range []struct {
		path string
		mode os.FileMode
	}{{*new0644, 0o644}, {*new0666, 0o666}, {*new0660, 0o660}, {*new0777, 0o777}} {
		if nf.path == "" {
			continue
		}
		if err := os.WriteFile(nf.path, []byte(expectedContent), nf.mode); err != nil {
			check(fmt.Errorf("error writing file %q: %v", nf.path, err))
			continue
		}
		check(readContent(nf.path))
	}
	if *fileMode != "" {
		if fi, err := os.Stat(*fileMode); err != nil {
			check(fmt.Errorf("error from Stat(%q): %v", *fileMode, err))
		} else {
			fmt.Printf("mode of file %q: %v\n", *fileMode, fi.Mode())
		}
	}
	if *filePerm != "" {
		if fi, err := os.Stat(*filePerm); err != nil {
			check(fmt.Errorf("error from Stat(%q): %v", *filePerm, err))
		} else {
			fmt.Printf("perms of file %q: %v\n", *filePerm, fi.Mode().Perm())
		}
	}
	if *fileOwner != "" {
		if fi, err := os.Stat(*fileOwner); err != nil {
			check(fmt.Errorf("error from Stat(%q): %v", *fileOwner, err))
		} else {
			st := fi.Sys().(*syscall.Stat_t)
			fmt.Printf("owner UID of %q: %v\n", *fileOwner, st.Uid)
			fmt.Printf("owner GID of %q: %v\n", *fileOwner, st.Gid)
		}
	}
	if *fileContent != "" {
		check(readContent(*fileContent))
	}
	if *loop != "" {
		var err error
		for start := time.Now(); time.Since(start) < time.Duration(*retry)*time.Second; time.Sleep(2 * time.Second) {
			var b []byte
			b, err = os.ReadFile(*loop)
			if err != nil {
				fmt.Printf("Error reading file %s: %v, retrying\n", *loop, err)
				continue
			}
			fmt.Printf("content of file %q: %v\n", *loop, string(b))
			if *breakOnExpected {
				if string(b) != expectedContent {
					fmt.Printf("Unexpected content. Expected: %s. Retrying\n", expectedContent)
					continue
				}
				break
			}
		}
		check(err)
	}
	if failed {
		return 1
	}
	return 0
}

func readContent(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("error reading file content for %q: %v", path, err)
	}
	fmt.Printf("content of file %q: %v\n", path, string(b))
	return nil
}

func fatal(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

package runtime

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// ErrUnauthorized says that a registry refused the credentials (or the lack of them).
var ErrUnauthorized = errors.New("unauthorized")

// Credentials finds a registry's user name and password; ok is false when there are none.
type Credentials func(host string) (user, secret string, ok bool)

// Pull fetches an image from its registry and unpacks it. Registries on localhost may answer
// plain HTTP. The reference is normalised the Docker way ("busybox" is
// docker.io/library/busybox:latest) and the image is stored under the name the pod used.
// progress, when not nil, counts the pull's bytes while it runs.
func (r *Runtime) Pull(ctx context.Context, ref string, creds Credentials, progress *PullProgress) (Image, error) {
	ctx = r.ns(ctx)
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return Image{}, fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	hosts := config.ConfigureHosts(ctx, config.HostOptions{
		Credentials: func(host string) (string, string, error) {
			if creds == nil {
				return "", "", nil
			}
			u, p, _ := creds(host)
			return u, p, nil
		},
	})
	var resolver remotes.Resolver = docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	opts := []client.RemoteOpt{client.WithPullUnpack, client.WithPullSnapshotter(r.snapshotter)}
	if progress != nil {
		resolver = countingResolver{Resolver: resolver, p: progress}
		opts = append(opts, client.WithImageHandlerWrapper(progress.handlerWrapper))
	}
	var img client.Image
	err = r.withTransferLease(ctx, func(ctx context.Context) (err error) {
		img, err = r.client.Pull(ctx, named.String(), append(opts, client.WithResolver(resolver))...)
		return err
	})
	if err != nil {
		if errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err) || strings.Contains(err.Error(), "401 Unauthorized") {
			return Image{}, fmt.Errorf("pull %s: %w: %v", ref, ErrUnauthorized, err)
		}
		if errdefs.IsNotFound(err) {
			return Image{}, fmt.Errorf("pull %s: %w: %v", ref, ErrImageNotFound, err)
		}
		return Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	if named.String() != ref {
		// Keep the image findable by the reference the manifest wrote.
		meta := img.Metadata()
		meta.Name = ref
		if _, err := r.client.ImageService().Create(ctx, meta); err != nil && !errdefs.IsAlreadyExists(err) {
			return Image{}, fmt.Errorf("tag %s: %w", ref, err)
		}
	}
	return r.GetImage(ctx, ref)
}

// AuthFile reads registry credentials from Docker-style auth files ({"auths": {"host":
// {"auth": base64(user:password)}}} or username/password fields), the first file that exists
// winning. Docker Hub's legacy key https://index.docker.io/v1/ counts for docker.io.
//
// check, when not nil, is given each file's path and what fstat says of it once opened, and
// its error refuses the file before a byte is read: the daemon passes its permission rule
// (root's, no access for group or others). A file that is not a regular one (a FIFO, a
// device) is refused without being waited on.
func AuthFile(check func(path string, info os.FileInfo) error, paths ...string) (Credentials, error) {
	for _, p := range paths {
		data, err := readAuthFile(p, check)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var f struct {
			Auths map[string]struct {
				Auth     string `json:"auth"`
				Username string `json:"username"`
				Password string `json:"password"`
			} `json:"auths"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("auth file %s: %w", p, err)
		}
		entries := map[string][2]string{}
		for host, a := range f.Auths {
			user, pass := a.Username, a.Password
			if a.Auth != "" {
				dec, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return nil, fmt.Errorf("auth file %s: entry %s: %w", p, host, err)
				}
				user, pass, _ = strings.Cut(string(dec), ":")
			}
			h := strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
			h, _, _ = strings.Cut(h, "/")
			if h == "index.docker.io" {
				h = "registry-1.docker.io"
			}
			entries[h] = [2]string{user, pass}
		}
		return func(host string) (string, string, bool) {
			e, ok := entries[host]
			if !ok && host == "docker.io" {
				e, ok = entries["registry-1.docker.io"]
			}
			return e[0], e[1], ok
		}, nil
	}
	return nil, nil
}

// maxAuthFile is the largest auth file read; real ones hold a few entries.
const maxAuthFile = 1 << 20

// readAuthFile reads the auth file at path after checking, on the opened file, that it is a
// regular file and that check accepts it.
func readAuthFile(path string, check func(string, os.FileInfo) error) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("auth file %s is not a regular file (mode %s)", path, info.Mode())
	}
	if check != nil {
		if err := check(path, info); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAuthFile+1))
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	if len(data) > maxAuthFile {
		return nil, fmt.Errorf("auth file %s is larger than %d bytes", path, maxAuthFile)
	}
	return data, nil
}

package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Managed is a containerd that minipod runs and supervises itself, the way k3s embeds one:
// its own config (the CRI plugin off), root under minipod's state directory, state and socket
// under /run/minipod. It is restarted when it dies. Its shims, and so the pods, outlive it.
type Managed struct {
	Binary  string // containerd binary
	Root    string // persistent: images, snapshots, container records
	State   string // volatile: tasks, shim sockets
	Address string // socket it serves
	Log     *slog.Logger

	cmd *exec.Cmd
}

// ManagedPaths returns the places of a managed containerd: its root in minipod's state
// directory, its state and socket beside minipod's own socket (under /run by default).
func ManagedPaths(stateDir, socketDir string) (root, state, address string) {
	return filepath.Join(stateDir, "containerd"), filepath.Join(socketDir, "containerd"), filepath.Join(socketDir, "containerd", "containerd.sock")
}

func (m *Managed) config() string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, m.Root, m.State, m.Address, m.Address+".ttrpc")
}

// Run starts containerd, waits until it answers (or ctx ends), and then keeps it running in the
// background until ctx ends: a containerd that dies is started again after a short delay.
// When ctx ends, containerd is asked to stop; the pods' shims keep running.
func (m *Managed) Run(ctx context.Context) error {
	for _, d := range []string{m.Root, m.State, filepath.Dir(m.Address)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
	}
	cfgPath := filepath.Join(m.State, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(m.config()), 0o600); err != nil {
		return err
	}
	exited, err := m.start(cfgPath)
	if err != nil {
		return err
	}
	if err := waitServing(ctx, m.Address); err != nil {
		return err
	}
	go m.supervise(ctx, cfgPath, exited)
	return nil
}

func (m *Managed) start(cfgPath string) (<-chan struct{}, error) {
	logPath := filepath.Join(m.State, "containerd.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(m.Binary, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C at minipod's terminal must not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start managed containerd: %w", err)
	}
	m.cmd = cmd
	m.Log.Info("started managed containerd", "pid", cmd.Process.Pid, "address", m.Address, "log", logPath)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return exited, nil
}

func (m *Managed) supervise(ctx context.Context, cfgPath string, exited <-chan struct{}) {
	delay := time.Second
	for {
		select {
		case <-ctx.Done():
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = m.cmd.Process.Kill()
			}
			return
		case <-exited:
		}
		m.Log.Warn("managed containerd exited, restarting", "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		var err error
		if exited, err = m.start(cfgPath); err != nil {
			m.Log.Error("restart managed containerd", "err", err)
			delay = min(2*delay, 30*time.Second)
			ch := make(chan struct{})
			close(ch)
			exited = ch
			continue
		}
		delay = time.Second
	}
}

// Answers reports whether a containerd serves at address, within timeout.
func Answers(ctx context.Context, address, namespace string, timeout time.Duration) bool {
	if _, err := os.Stat(address); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rt, err := New(ctx, Config{Address: address, Namespace: namespace})
	if err != nil {
		return false
	}
	rt.Close()
	return true
}

func waitServing(ctx context.Context, address string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if Answers(ctx, address, "default", 2*time.Second) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("managed containerd did not answer at %s within 30s", address)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

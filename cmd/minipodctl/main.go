// Command minipodctl inspects and debugs the pods of a local minipod daemon. It talks only to
// the daemon's API socket (--socket, $MINIPOD_SOCKET, or /run/minipod/minipod.sock).
//
//	minipodctl status [NAME] [-o table|wide|json|yaml]
//	minipodctl logs NAME [-c CONTAINER] [-f] [-p|--previous] [--tail N] [--since D] [--timestamps]
//	minipodctl exec NAME [-c CONTAINER] [-i] [-t] -- CMD [ARG...]
//	minipodctl rollout history|retry NAME
//	minipodctl images [prune] [-o table|json]
//
// Exit status: 0 on success, 1 on error (message on stderr as "Error: ..."), and for exec the
// exit code of the command.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/config"
	"github.com/minipod/minipod/pkg/manifest"
	"github.com/minipod/minipod/pkg/policy"
)

const usage = `minipodctl controls a local minipod daemon.

Usage:
  minipodctl status [NAME] [-o table|wide|json|yaml] [-w]
        List pods (NAME may be "name" or "namespace/name"); -w keeps printing changes.
  minipodctl logs NAME [-c CONTAINER] [-f] [-p]
        Print a container's log (-f follows it, -p/--previous shows the previous attempt,
        --tail N the last N lines, --since 5m the lines of the last 5 minutes,
        --timestamps each line's time).
  minipodctl exec NAME [-c CONTAINER] [-i] [-t] -- CMD [ARG...]
        Run a command in a container (-i forwards stdin, -t allocates a terminal).
  minipodctl describe NAME
        Show a pod in detail, with its events.
  minipodctl events [NAME] [-f]
        List the daemon's events (of one pod with NAME); -f keeps printing new ones.
  minipodctl rollout history NAME
        List the pod's last revisions: when each ran, became Ready and ended, and how.
  minipodctl rollout retry NAME
        Try again the revision that was rolled back (see "Updates" in the README).
  minipodctl images [prune] [-o table|json]
        List the images with size, last use, the pods using them and whether they are
        pinned; prune removes every image no pod uses, pinned or not the pause image, now.
  minipodctl validate [--strict] [--config FILE] FILE...
        Check manifests with the daemon's rules, without a daemon; exit 1 when any is bad.
        --strict also refuses what an API server would (unknown fields, duplicate keys),
        in every document of a file.
        --config also checks them against the node policy in the daemon's configuration
        file (e.g. /etc/minipod/config.yaml).
  minipodctl version
        Print minipodctl's version.
  minipodctl completion bash
        Print a bash completion script: source <(minipodctl completion bash)

Examples:
  minipodctl status -o wide
  minipodctl logs web -c server -f
  minipodctl exec web -c server -- cat /etc/hosts
  minipodctl validate /etc/minipod/manifests/*.yaml

Flags for every command:
      --socket PATH   API socket (default $MINIPOD_SOCKET or /run/minipod/minipod.sock)
  -h, --help          show this help
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// runValidate checks manifest files with the rules the daemon applies and prints one line per
// file. Exit code 1 when any file is bad.
func runValidate(args []string, stdout, stderr io.Writer) int {
	strict := false
	var files []string
	var pol *policy.Policy
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--strict":
			strict = true
		case a == "--config" || strings.HasPrefix(a, "--config="):
			path, ok := strings.CutPrefix(a, "--config=")
			if !ok {
				if i+1 == len(args) {
					fmt.Fprintln(stderr, "Error: --config needs a FILE")
					return 1
				}
				i++
				path = args[i]
			}
			// LoadFile, not Load: a draft is checked whatever its owner and mode.
			cfg, err := config.LoadFile(path)
			if err != nil {
				fmt.Fprintf(stderr, "Error: %v\n", err)
				return 1
			}
			pol = &cfg.Policy
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(stderr, "Error: unknown flag %s for validate\n", a)
			return 1
		default:
			files = append(files, a)
		}
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "Error: validate needs at least one FILE")
		return 1
	}
	bad := 0
	for _, f := range files {
		if err := validateFile(f, strict, pol); err != nil {
			bad++
			fmt.Fprintf(stdout, "%s: %s\n", escape(f), escapeLines(err.Error()))
			continue
		}
		fmt.Fprintf(stdout, "%s: valid\n", escape(f))
	}
	if bad > 0 {
		return 1
	}
	return 0
}

func validateFile(path string, strict bool, pol *policy.Policy) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := manifest.CheckSize(st.Size()); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if strict {
		if _, err := manifest.DecodeAllStrict(data); err != nil {
			return err
		}
	}
	abs, _ := filepath.Abs(path)
	pods, err := manifest.LoadAll(abs, data)
	if err != nil || pol == nil {
		return err
	}
	for _, pod := range pods {
		if err := pol.Admit(pod); err != nil {
			if len(pods) > 1 {
				return fmt.Errorf("%s: pod %s: %w", policy.ReasonOf(err), pod.Name, err)
			}
			return fmt.Errorf("%s: %w", policy.ReasonOf(err), err)
		}
	}
	return nil
}

// defaultContainerAnnotation names the container logs and exec use by default (as in kubectl).
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes minipodctl with args (without the program name) and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "Error: %s\n", escapeLines(err.Error())) // it may quote the daemon
		return 1
	}

	// Global flags before the command.
	socket := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		switch {
		case a == "-h" || a == "--help":
			fmt.Fprint(stdout, usage)
			return 0
		case a == "--socket":
			if len(args) < 2 {
				return fail(errors.New("flag needs an argument: --socket"))
			}
			socket, args = args[1], args[2:]
		case strings.HasPrefix(a, "--socket="):
			socket, args = strings.TrimPrefix(a, "--socket="), args[1:]
		default:
			return fail(fmt.Errorf("unknown flag: %s\nSee 'minipodctl --help'.", a))
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	command, args := args[0], args[1:]

	common := []flagDef{{long: "socket", value: true}, {long: "help", short: 'h'}}
	var defs []flagDef
	maxPositional := 0
	switch command {
	case "status":
		defs = []flagDef{{long: "output", short: 'o', value: true}, {long: "watch", short: 'w'}}
	case "logs":
		defs = []flagDef{{long: "container", short: 'c', value: true}, {long: "follow", short: 'f'}, {long: "previous", short: 'p'}, {long: "tail", value: true}, {long: "since", value: true}, {long: "timestamps"}}
	case "exec":
		defs = []flagDef{{long: "container", short: 'c', value: true}, {long: "stdin", short: 'i'}, {long: "tty", short: 't'}}
		maxPositional = 1
	case "describe":
		maxPositional = 1
	case "events":
		defs = []flagDef{{long: "follow", short: 'f'}}
		maxPositional = 1
	case "rollout":
		maxPositional = 2
	case "images":
		defs = []flagDef{{long: "output", short: 'o', value: true}}
		maxPositional = 1
	case "validate":
		return runValidate(args, stdout, stderr)
	case "completion":
		return runCompletion(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "minipodctl", version)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		return fail(fmt.Errorf("unknown command %q for \"minipodctl\"\nSee 'minipodctl --help'.", command))
	}
	p, err := parseArgs(args, append(defs, common...), maxPositional)
	if err != nil {
		return fail(fmt.Errorf("%w\nSee 'minipodctl --help'.", err))
	}
	if p.bools["help"] {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if v, ok := p.values["socket"]; ok {
		socket = v
	}
	if socket == "" {
		socket = os.Getenv("MINIPOD_SOCKET")
	}
	if socket == "" {
		socket = api.DefaultSocket
	}
	client := &api.Client{Socket: socket}
	ctx := context.Background()

	switch command {
	case "status":
		err = cmdStatus(ctx, client, p, stdout, stderr)
	case "logs":
		err = cmdLogs(ctx, client, p, stdout)
	case "describe":
		err = cmdDescribe(ctx, client, p, stdout)
	case "events":
		err = cmdEvents(ctx, client, p, stdout)
	case "rollout":
		err = cmdRollout(ctx, client, p, stdout)
	case "images":
		err = cmdImages(ctx, client, p, stdout)
	case "exec":
		var code int
		code, err = cmdExec(ctx, client, p, stdin, stdout, stderr)
		if err == nil {
			return code
		}
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// rawPodList is a PodList whose items are kept as the server sent them.
type rawPodList struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   json.RawMessage   `json:"metadata"`
	Items      []json.RawMessage `json:"items"`
}

// podKey is namespace (defaulted) and name of a pod.
func podKey(meta struct{ Namespace, Name string }) (string, string) {
	if meta.Namespace == "" {
		meta.Namespace = "default"
	}
	return meta.Namespace, meta.Name
}

// matchesName reports whether the pod namespace/name is selected by arg ("name" or "ns/name").
func matchesName(namespace, name, arg string) bool {
	if ns, n, ok := strings.Cut(arg, "/"); ok {
		return ns == namespace && n == name
	}
	return arg == name
}

func cmdStatus(ctx context.Context, c *api.Client, p *parsedArgs, stdout, stderr io.Writer) error {
	output := p.values["output"]
	if p.bools["watch"] {
		if output != "" && output != "table" && output != "wide" {
			return fmt.Errorf("-w works with the table and wide outputs")
		}
		name := ""
		if len(p.positional) > 0 {
			name = p.positional[0]
		}
		return watchStatus(ctx, c, name, output == "wide", stdout)
	}
	switch output {
	case "":
		output = "table"
	case "table", "wide", "json", "yaml":
	default:
		return fmt.Errorf("unknown output format %q (use table, wide, json or yaml)", output)
	}
	if len(p.positional) > 1 || len(p.rest) > 0 {
		return errors.New("status takes at most one pod name")
	}
	data, err := c.PodListJSON(ctx)
	if err != nil {
		return err
	}
	// The list comes from the daemon's memory: say so when it cannot reach containerd now.
	if herr := c.Health(ctx); herr != nil {
		fmt.Fprintf(stderr, "Warning: the status may be stale: %s\n", escape(herr.Error()))
	}
	var list rawPodList
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("decode pod list: %w", err)
	}
	items := list.Items
	if len(p.positional) == 1 {
		name := p.positional[0]
		items = nil
		for _, raw := range list.Items {
			var obj struct {
				Metadata struct{ Namespace, Name string } `json:"metadata"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				return fmt.Errorf("decode pod: %w", err)
			}
			if ns, n := podKey(obj.Metadata); matchesName(ns, n, name) {
				items = append(items, raw)
			}
		}
		if len(items) == 0 {
			return fmt.Errorf("pod %q not found", name)
		}
	}

	switch output {
	case "json", "yaml":
		out := rawPodList{APIVersion: list.APIVersion, Kind: list.Kind, Metadata: list.Metadata, Items: items}
		if out.APIVersion == "" {
			out.APIVersion = "v1"
		}
		if out.Kind == "" {
			out.Kind = "PodList"
		}
		if len(out.Metadata) == 0 || string(out.Metadata) == "null" {
			out.Metadata = json.RawMessage("{}")
		}
		if out.Items == nil {
			out.Items = []json.RawMessage{}
		}
		js, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		if output == "yaml" {
			y, err := yaml.JSONToYAML(js)
			if err != nil {
				return err
			}
			_, err = stdout.Write(y)
			return err
		}
		_, err = stdout.Write(append(js, '\n'))
		return err
	}

	pods := make([]corev1.Pod, len(items))
	for i, raw := range items {
		if err := json.Unmarshal(raw, &pods[i]); err != nil {
			return fmt.Errorf("decode pod: %w", err)
		}
	}
	if len(pods) == 0 {
		fmt.Fprintln(stderr, "No pods found.")
		return nil
	}
	return printTable(stdout, pods, output == "wide", time.Now())
}

// resolvePod finds the pod arg ("name" or "namespace/name") refers to. A bare name that exists
// in several namespaces means the one in "default" (shown without namespace by status).
func resolvePod(list *corev1.PodList, arg string) (*corev1.Pod, error) {
	var matches []*corev1.Pod
	for i := range list.Items {
		pod := &list.Items[i]
		ns, name := podKey(struct{ Namespace, Name string }{pod.Namespace, pod.Name})
		if matchesName(ns, name, arg) {
			matches = append(matches, pod)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("pod %q not found", arg)
	case 1:
		return matches[0], nil
	}
	var names []string
	for _, m := range matches {
		if m.Namespace == "" || m.Namespace == "default" {
			return m, nil
		}
		names = append(names, m.Namespace+"/"+m.Name)
	}
	return nil, fmt.Errorf("pod name %q is ambiguous, use one of: %s", arg, strings.Join(names, ", "))
}

// pickContainer returns the container to use: the requested one (which must exist), else the
// pod's default-container annotation, else its only app container. With several app containers
// logs needs -c (the error lists them, like kubectl); exec takes the first and says so on
// stderr, like kubectl.
func pickContainer(pod *corev1.Pod, requested string, forExec bool, stderr io.Writer) (string, error) {
	var app, initC, all []string
	for _, c := range pod.Spec.Containers {
		app = append(app, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		initC = append(initC, c.Name)
	}
	all = append(append(all, app...), initC...)
	for _, c := range pod.Spec.EphemeralContainers {
		all = append(all, c.Name)
	}
	if requested != "" {
		if !slices.Contains(all, requested) {
			return "", fmt.Errorf("container %s is not valid for pod %s", requested, displayName(pod))
		}
		return requested, nil
	}
	if d := pod.Annotations[defaultContainerAnnotation]; d != "" && slices.Contains(all, d) {
		return d, nil
	}
	switch {
	case len(app) == 0:
		return "", fmt.Errorf("pod %s has no containers", displayName(pod))
	case len(app) == 1:
		return app[0], nil
	case forExec:
		choices := slices.Clone(app)
		for _, c := range initC {
			choices = append(choices, c+" (init)")
		}
		fmt.Fprintf(stderr, "Defaulted container %q out of: %s\n", app[0], escape(strings.Join(choices, ", ")))
		return app[0], nil
	}
	msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", displayName(pod), strings.Join(app, " "))
	if len(initC) > 0 {
		msg += fmt.Sprintf(" or one of the init containers: [%s]", strings.Join(initC, " "))
	}
	return "", errors.New(msg)
}

func namespaceOf(pod *corev1.Pod) string {
	if pod.Namespace == "" {
		return "default"
	}
	return pod.Namespace
}

func cmdLogs(ctx context.Context, c *api.Client, p *parsedArgs, stdout io.Writer) error {
	if len(p.positional) == 0 || len(p.positional) > 2 || len(p.rest) > 0 {
		return errors.New("expected 'logs NAME [-c CONTAINER]'")
	}
	container := p.values["container"]
	if len(p.positional) == 2 { // kubectl also accepts `logs POD CONTAINER`
		if container != "" && container != p.positional[1] {
			return errors.New("only one of -c or an inline container name is allowed")
		}
		container = p.positional[1]
	}
	list, err := c.Pods(ctx)
	if err != nil {
		return err
	}
	pod, err := resolvePod(list, p.positional[0])
	if err != nil {
		return err
	}
	container, err = pickContainer(pod, container, false, nil)
	if err != nil {
		return err
	}
	follow := p.bools["follow"]
	if follow {
		// Ctrl-C ends following normally.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	opts := api.LogOptions{Container: container, Follow: follow, Previous: p.bools["previous"], Tail: -1, Timestamps: p.bools["timestamps"]}
	if v, ok := p.values["tail"]; ok {
		if opts.Tail, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("--tail: %q is not a number", v)
		}
	}
	if v, ok := p.values["since"]; ok {
		if opts.Since, err = time.ParseDuration(v); err != nil || opts.Since <= 0 {
			return fmt.Errorf("--since: %q is not a positive duration such as 5s, 2m or 3h", v)
		}
	}
	err = c.LogsWith(ctx, namespaceOf(pod), pod.Name, opts, stdout)
	if err != nil && follow && ctx.Err() != nil {
		return nil
	}
	return err
}

func cmdExec(ctx context.Context, c *api.Client, p *parsedArgs, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(p.positional) == 0 {
		return 1, errors.New("expected 'exec NAME [-c CONTAINER] [-i] [-t] -- COMMAND [args...]'")
	}
	if len(p.rest) == 0 {
		return 1, errors.New("you must specify at least one command for the container")
	}
	list, err := c.Pods(ctx)
	if err != nil {
		return 1, err
	}
	pod, err := resolvePod(list, p.positional[0])
	if err != nil {
		return 1, err
	}
	container, err := pickContainer(pod, p.values["container"], true, stderr)
	if err != nil {
		return 1, err
	}

	var in io.Reader
	if p.bools["stdin"] {
		in = stdin
	}
	tty := false
	if p.bools["tty"] {
		f, ok := stdin.(*os.File)
		if in != nil && ok && isTerminal(f.Fd()) {
			tty = true
			restore, err := makeRaw(f.Fd())
			if err != nil {
				return 1, fmt.Errorf("set terminal to raw mode: %w", err)
			}
			defer restore()
		} else {
			fmt.Fprintln(stderr, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
	}
	code, err := c.Exec(ctx, namespaceOf(pod), pod.Name, container, p.rest, tty, in, stdout, stderr)
	if err != nil {
		return 1, err
	}
	if code < 0 {
		code = 1
	}
	return code, nil
}

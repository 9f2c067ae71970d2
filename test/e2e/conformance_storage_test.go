package e2e

// Ports of test/e2e/common/storage: empty_dir.go, host_path.go, downwardapi_volume.go,
// projected_downwardapi.go, configmap_volume.go, projected_configmap.go, secrets_volume.go,
// projected_secret.go, projected_combined.go. The containers run the helper's mounttest
// (agnhost's), so the expected output lines are upstream's.
//
// File modes are written in decimal in the manifests (0400 is 256): YAML 1.1 and 1.2 read a
// leading zero differently.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// modeLine is getFileModeRegex for Linux: the mounttest line giving path's mode.
func modeLine(path string, mode os.FileMode) string {
	return regexp.QuoteMeta(fmt.Sprintf("mode of file %q: %v", path, mode))
}

func emptyDirScenarios() []scenario {
	const g = "empty_dir"
	// testPodWithVolume: agnhost running mounttest with args, the volume at /test-volume.
	podWith := func(c *conf, name string, uid int64, medium, fsGroup, subPath string, args ...string) {
		sc := "seLinuxOptions: {level: s0}"
		if uid != 0 {
			sc += fmt.Sprintf(", runAsUser: %d", uid)
		}
		if fsGroup != "" {
			sc += ", fsGroup: " + fsGroup
		}
		mount := "{name: test-volume, mountPath: /test-volume"
		if subPath != "" {
			mount += ", subPath: " + subPath
		}
		c.apply(name, manifest(name, "  securityContext: {"+sc+"}\n  restartPolicy: Never\n  volumes: [{name: test-volume, emptyDir: {"+medium+"}}]\n  containers:\n"+
			ctr("name: test-container", "image: "+agnhostImage, cmd("args", append([]string{"mounttest"}, args...)...), "volumeMounts: ["+mount+"}]")))
	}
	tmpfs := func(medium string) []string {
		if medium != "" {
			return []string{`mount type of "/test-volume": tmpfs`}
		}
		return nil
	}
	newFile := func(c *conf, name string, uid int64, medium string, mode string, perms string) {
		podWith(c, name, uid, medium, "", "", "--fs_type=/test-volume", "--new_file_"+mode+"=/test-volume/test-file", "--file_perm=/test-volume/test-file")
		c.expectOutput(name, "test-container", append([]string{`perms of file "/test-volume/test-file": ` + perms,
			`content of file "/test-volume/test-file": mount-tester new file`}, tmpfs(medium)...)...)
	}
	volumeMode := func(c *conf, name, medium, fsGroup string) {
		podWith(c, name, 0, medium, fsGroup, "", "--fs_type=/test-volume", "--file_perm=/test-volume")
		c.expectOutput(name, "test-container", append([]string{`perms of file "/test-volume": -rwxrwxrwx`}, tmpfs(medium)...)...)
	}
	const mem = "medium: Memory"
	type modeCase struct {
		name, pod string
		uid       int64
		medium    string
		mode      string
		perms     string
	}
	var out []scenario
	for _, mc := range []modeCase{
		{"should support (root,0644,tmpfs)", "emptydir-root-0644-tmpfs", 0, mem, "0644", "-rw-r--r--"},
		{"should support (root,0666,tmpfs)", "emptydir-root-0666-tmpfs", 0, mem, "0666", "-rw-rw-rw-"},
		{"should support (root,0777,tmpfs)", "emptydir-root-0777-tmpfs", 0, mem, "0777", "-rwxrwxrwx"},
		{"should support (non-root,0644,tmpfs)", "emptydir-nonroot-0644-tmpfs", 1001, mem, "0644", "-rw-r--r--"},
		{"should support (non-root,0666,tmpfs)", "emptydir-nonroot-0666-tmpfs", 1001, mem, "0666", "-rw-rw-rw-"},
		{"should support (non-root,0777,tmpfs)", "emptydir-nonroot-0777-tmpfs", 1001, mem, "0777", "-rwxrwxrwx"},
		{"should support (root,0644,default)", "emptydir-root-0644-default", 0, "", "0644", "-rw-r--r--"},
		{"should support (root,0666,default)", "emptydir-root-0666-default", 0, "", "0666", "-rw-rw-rw-"},
		{"should support (root,0777,default)", "emptydir-root-0777-default", 0, "", "0777", "-rwxrwxrwx"},
		{"should support (non-root,0644,default)", "emptydir-nonroot-0644-default", 1001, "", "0644", "-rw-r--r--"},
		{"should support (non-root,0666,default)", "emptydir-nonroot-0666-default", 1001, "", "0666", "-rw-rw-rw-"},
		{"should support (non-root,0777,default)", "emptydir-nonroot-0777-default", 1001, "", "0777", "-rwxrwxrwx"},
	} {
		out = append(out, scenario{g, mc.name, func(c *conf) { newFile(c, mc.pod, mc.uid, mc.medium, mc.mode, mc.perms) }})
	}
	return append(out,
		scenario{g, "when FSGroup is specified new files should be created with FSGroup ownership when container is root", func(c *conf) {
			name := "emptydir-fsgroup-root"
			podWith(c, name, 0, mem, "123", "", "--fs_type=/test-volume", "--new_file_0660=/test-volume/test-file", "--file_perm=/test-volume/test-file", "--file_owner=/test-volume/test-file")
			c.expectOutput(name, "test-container", `perms of file "/test-volume/test-file": -rw-rw----`,
				`content of file "/test-volume/test-file": mount-tester new file`, `owner GID of "/test-volume/test-file": 123`, `mount type of "/test-volume": tmpfs`)
		}},
		scenario{g, "when FSGroup is specified new files should be created with FSGroup ownership when container is non-root", func(c *conf) {
			name := "emptydir-fsgroup-nonroot"
			podWith(c, name, 1001, mem, "123", "", "--fs_type=/test-volume", "--new_file_0660=/test-volume/test-file", "--file_perm=/test-volume/test-file", "--file_owner=/test-volume/test-file")
			c.expectOutput(name, "test-container", `perms of file "/test-volume/test-file": -rw-rw----`,
				`content of file "/test-volume/test-file": mount-tester new file`, `owner GID of "/test-volume/test-file": 123`, `mount type of "/test-volume": tmpfs`)
		}},
		scenario{g, "when FSGroup is specified nonexistent volume subPath should have the correct mode and owner using FSGroup", func(c *conf) {
			name := "emptydir-fsgroup-subpath"
			podWith(c, name, 1001, mem, "123", "test-sub", "--fs_type=/test-volume", "--file_perm=/test-volume", "--file_owner=/test-volume", "--file_mode=/test-volume")
			c.expectOutput(name, "test-container", `perms of file "/test-volume": -rwxrwxrwx`, `owner UID of "/test-volume": 0`,
				`owner GID of "/test-volume": 123`, `mode of file "/test-volume": dgtrwxrwxrwx`, `mount type of "/test-volume": tmpfs`)
		}},
		scenario{g, "when FSGroup is specified files with FSGroup ownership should support (root,0644,tmpfs)", func(c *conf) {
			name := "emptydir-fsgroup-0644"
			podWith(c, name, 0, mem, "123", "", "--fs_type=/test-volume", "--new_file_0644=/test-volume/test-file", "--file_perm=/test-volume/test-file")
			c.expectOutput(name, "test-container", `perms of file "/test-volume/test-file": -rw-r--r--`,
				`content of file "/test-volume/test-file": mount-tester new file`, `mount type of "/test-volume": tmpfs`)
		}},
		scenario{g, "when FSGroup is specified volume on default medium should have the correct mode using FSGroup", func(c *conf) {
			volumeMode(c, "emptydir-fsgroup-mode-default", "", "1001")
		}},
		scenario{g, "when FSGroup is specified volume on tmpfs should have the correct mode using FSGroup", func(c *conf) {
			volumeMode(c, "emptydir-fsgroup-mode-tmpfs", mem, "1001")
		}},
		scenario{g, "volume on tmpfs should have the correct mode", func(c *conf) { volumeMode(c, "emptydir-mode-tmpfs", mem, "") }},
		scenario{g, "volume on default medium should have the correct mode", func(c *conf) { volumeMode(c, "emptydir-mode-default", "", "") }},
		scenario{g, "pod should support shared volumes between containers", func(c *conf) {
			name := "pod-sharedvolume"
			message := "Hello from the busy-box sub-container"
			c.apply(name, manifest(name, "  terminationGracePeriodSeconds: 0\n  restartPolicy: Never\n  volumes: [{name: shared-data, emptyDir: {}}]\n  containers:\n"+
				ctr("name: busybox-main-container", "image: "+busyboxImage, cmd("command", "/bin/sh"), cmd("args", "-c", "trap exit TERM; while true; do sleep 1; done"),
					"volumeMounts: [{name: shared-data, mountPath: /usr/share/volumeshare}]")+
				ctr("name: busybox-sub-container", "image: "+busyboxImage, cmd("command", "/bin/sh"), cmd("args", "-c", "echo "+message+" > /pod-data/shareddata.txt"),
					"volumeMounts: [{name: shared-data, mountPath: /pod-data}]")))
			c.waitRunning(name)
			c.until(time.Minute, "the shared file", func() (bool, string) {
				out, errs, _ := c.exec(name, "busybox-main-container", "/bin/sh", "-c", "cat /usr/share/volumeshare/shareddata.txt")
				return strings.TrimSpace(out) == message, out + errs
			})
		}},
		scenario{g, "pod should support memory backed volumes of specified size", func(c *conf) {
			name := "pod-size-memory-volume"
			c.apply(name, manifest(name, "  terminationGracePeriodSeconds: 0\n  restartPolicy: Never\n  volumes: [{name: shared-data, emptyDir: {medium: Memory, sizeLimit: 10Mi}}]\n  containers:\n"+
				ctr("name: busybox-main-container", "image: "+busyboxImage, cmd("command", "/bin/sh"), cmd("args", "-c", "trap exit TERM; while true; do sleep 1; done"),
					"volumeMounts: [{name: shared-data, mountPath: /usr/share/volumeshare}]")))
			c.waitRunning(name)
			out, errs, _ := c.exec(name, "busybox-main-container", "/bin/sh", "-c", "df | grep /usr/share/volumeshare | awk '{print $2}'")
			if strings.TrimSpace(out) != "10240" {
				c.t.Errorf("empty dir size = %q (%s), want 10240", out, errs)
			}
		}},
	)
}

func hostPathScenarios() []scenario {
	const g = "host_path"
	// testPodWithHostVol, on a directory of the test's own that stands for the node's /tmp
	// (mode 1777, as /tmp), so that the test writes nothing to the machine's /tmp.
	pod := func(c *conf, name string, privileged bool, c1, c2 []string, subPath1 string) {
		dir := filepath.Join(c.scratch, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			c.t.Fatal(err)
		}
		if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
			c.t.Fatal(err)
		}
		m1 := "{name: test-volume, mountPath: /test-volume"
		if subPath1 != "" {
			m1 += ", subPath: " + subPath1
		}
		priv := fmt.Sprintf("securityContext: {privileged: %v}", privileged)
		c.apply(name, manifest(name, "  restartPolicy: Never\n  volumes: [{name: test-volume, hostPath: {path: "+dir+"}}]\n  containers:\n"+
			ctr("name: test-container-1", "image: "+agnhostImage, cmd("args", append([]string{"mounttest"}, c1...)...), "volumeMounts: ["+m1+"}]", priv)+
			ctr("name: test-container-2", "image: "+agnhostImage, cmd("args", append([]string{"mounttest"}, c2...)...), "volumeMounts: [{name: test-volume, mountPath: /test-volume}]", priv)))
	}
	return []scenario{
		{g, "should give a volume the correct mode", func(c *conf) {
			pod(c, "pod-host-path-mode", false, []string{"--fs_type=/test-volume", "--file_mode=/test-volume"}, nil, "")
			c.expectOutputRegexp("pod-host-path-mode", "test-container-1", `mode of file "/test-volume": dg?trwxrwx`)
		}},
		{g, "should support r/w", func(c *conf) {
			pod(c, "pod-host-path-rw", true, []string{"--new_file_0644=/test-volume/test-file", "--file_mode=/test-volume/test-file"},
				[]string{"--file_content_in_loop=/test-volume/test-file", "--retry_time=180"}, "")
			c.expectOutput("pod-host-path-rw", "test-container-2", `content of file "/test-volume/test-file": mount-tester new file`)
		}},
		{g, "should support subPath", func(c *conf) {
			pod(c, "pod-host-path-subpath", true, []string{"--new_file_0644=/test-volume/test-file", "--file_mode=/test-volume/test-file"},
				[]string{"--file_content_in_loop=/test-volume/sub-path/test-file", "--retry_time=180"}, "sub-path")
			c.expectOutput("pod-host-path-subpath", "test-container-2", `content of file "/test-volume/sub-path/test-file": mount-tester new file`)
		}},
	}
}

func downwardAPIVolumeScenarios() []scenario {
	var out []scenario
	for _, projected := range []bool{false, true} {
		g, prefix := "downwardapi_volume", "downwardapi-volume-"
		if projected {
			g, prefix = "projected_downwardapi", "projected-dapi-volume-"
		}
		// The volume podinfo with the pod's name and the container's resources, as
		// downwardAPIVolumeBasePod (plus labels and annotations when asked).
		volume := func(defaultMode, itemMode int, labels, annotations bool) string {
			items := []string{"{path: podname, fieldRef: {apiVersion: v1, fieldPath: metadata.name}" + modeField(itemMode) + "}"}
			for _, r := range []struct{ path, res string }{{"cpu_limit", "limits.cpu"}, {"cpu_request", "requests.cpu"}, {"memory_limit", "limits.memory"}, {"memory_request", "requests.memory"}} {
				items = append(items, fmt.Sprintf("{path: %s, resourceFieldRef: {containerName: client-container, resource: %s}}", r.path, r.res))
			}
			if labels {
				items = append(items, "{path: labels, fieldRef: {apiVersion: v1, fieldPath: metadata.labels}}")
			}
			if annotations {
				items = append(items, "{path: annotations, fieldRef: {apiVersion: v1, fieldPath: metadata.annotations}}")
			}
			list := "[" + strings.Join(items, ", ") + "]"
			if projected {
				return "  volumes: [{name: podinfo, projected: {" + strings.TrimPrefix(modeFieldNamed("defaultMode", defaultMode)+", ", ", ") + "sources: [{downwardAPI: {items: " + list + "}}]}}]\n"
			}
			return "  volumes: [{name: podinfo, downwardAPI: {items: " + list + modeFieldNamed("defaultMode", defaultMode) + "}}]\n"
		}
		pod := func(name, vol, podFields string, fields ...string) string {
			return manifest(name, podFields+"  restartPolicy: Never\n"+vol+"  containers:\n"+
				ctr(append([]string{"name: client-container", "image: " + agnhostImage}, append(fields, "volumeMounts: [{name: podinfo, mountPath: /etc/podinfo}]")...)...))
		}
		const resources = "resources: {requests: {cpu: 250m, memory: 32Mi}, limits: {cpu: 1250m, memory: 64Mi}}"
		content := func(file string) string { return cmd("args", "mounttest", "--file_content=/etc/podinfo/"+file) }
		fileMode := cmd("args", "mounttest", "--file_mode=/etc/podinfo/podname")
		nonRoot := "  securityContext: {fsGroup: 1234, runAsUser: 1000}\n"
		out = append(out,
			scenario{g, "should provide podname only", func(c *conf) {
				name := prefix + "podname"
				c.apply(name, pod(name, volume(0, 0, false, false), "", content("podname")))
				c.expectOutput(name, "client-container", name+"\n")
			}},
			scenario{g, "should set DefaultMode on files", func(c *conf) {
				name := prefix + "defaultmode"
				c.apply(name, pod(name, volume(0o400, 0, false, false), "", fileMode))
				c.expectOutput(name, "client-container", `mode of file "/etc/podinfo/podname": -r--------`)
			}},
			scenario{g, "should set mode on item file", func(c *conf) {
				name := prefix + "itemmode"
				c.apply(name, pod(name, volume(0, 0o400, false, false), "", fileMode))
				c.expectOutput(name, "client-container", `mode of file "/etc/podinfo/podname": -r--------`)
			}},
			scenario{g, "should provide podname as non-root with fsgroup", func(c *conf) {
				name := prefix + "fsgroup"
				c.apply(name, pod(name, volume(0, 0, false, false), nonRoot, content("podname")))
				c.expectOutput(name, "client-container", name+"\n")
			}},
			scenario{g, "should provide podname as non-root with fsgroup and defaultMode", func(c *conf) {
				name := prefix + "fsgroup-mode"
				c.apply(name, pod(name, volume(0, 0o440, false, false), nonRoot, fileMode))
				c.expectOutput(name, "client-container", `mode of file "/etc/podinfo/podname": -r--r-----`)
			}},
			scenario{g, "should provide container's cpu limit", func(c *conf) {
				name := prefix + "cpu-limit"
				c.apply(name, pod(name, volume(0, 0, false, false), "", content("cpu_limit"), resources))
				c.expectOutput(name, "client-container", "2\n")
			}},
			scenario{g, "should provide container's memory limit", func(c *conf) {
				name := prefix + "memory-limit"
				c.apply(name, pod(name, volume(0, 0, false, false), "", content("memory_limit"), resources))
				c.expectOutput(name, "client-container", "67108864\n")
			}},
			scenario{g, "should provide container's cpu request", func(c *conf) {
				name := prefix + "cpu-request"
				c.apply(name, pod(name, volume(0, 0, false, false), "", content("cpu_request"), resources))
				c.expectOutput(name, "client-container", "1\n")
			}},
			scenario{g, "should provide container's memory request", func(c *conf) {
				name := prefix + "memory-request"
				c.apply(name, pod(name, volume(0, 0, false, false), "", content("memory_request"), resources))
				c.expectOutput(name, "client-container", "33554432\n")
			}},
			scenario{g, "should provide node allocatable (cpu) as default cpu limit if the limit is not set", func(c *conf) {
				name := prefix + "default-cpu"
				c.apply(name, pod(name, volume(0, 0, false, false), "", content("cpu_limit")))
				c.expectOutputRegexp(name, "client-container", "[1-9]")
			}},
			scenario{g, "should provide node allocatable (memory) as default memory limit if the limit is not set", func(c *conf) {
				name := prefix + "default-memory"
				c.apply(name, pod(name, volume(0, 0, false, false), "", content("memory_limit")))
				c.expectOutputRegexp(name, "client-container", "[1-9]")
			}},
		)
	}
	return out
}

// modeField is ", mode: N" for a file mode, or "" for 0.
func modeField(mode int) string { return modeFieldNamed("mode", mode) }

func modeFieldNamed(field string, mode int) string {
	if mode == 0 {
		return ""
	}
	return fmt.Sprintf(", %s: %d", field, mode)
}

// objKind is one of the four ways a pod mounts a configMap or a secret.
type objKind struct {
	group             string
	secret, projected bool
	mountPath         string // where the one-volume scenarios mount it
	value             func(n int) string
}

var objKinds = []objKind{
	{"configmap_volume", false, false, "/etc/configmap-volume", func(n int) string { return fmt.Sprintf("value-%d", n) }},
	{"projected_configmap", false, true, "/etc/projected-configmap-volume", func(n int) string { return fmt.Sprintf("value-%d", n) }},
	{"secrets_volume", true, false, "/etc/secret-volume", func(n int) string { return fmt.Sprintf("value-%d\n", n) }},
	{"projected_secret", true, true, "/etc/projected-secret-volume", func(n int) string { return fmt.Sprintf("value-%d\n", n) }},
}

// volume is the pod volume name showing object obj; rest are the source's fields (items,
// optional) and defaultMode its mode (0: unset).
func (k objKind) volume(name, obj string, defaultMode int, rest ...string) string {
	src, ref := "configMap", "name: "+obj
	if k.secret {
		src = "secret"
		if !k.projected {
			ref = "secretName: " + obj
		}
	}
	fields := strings.Join(append([]string{ref}, rest...), ", ")
	if k.projected {
		return fmt.Sprintf("{name: %s, projected: {sources: [{%s: {%s}}]%s}}", name, src, fields, modeFieldNamed("defaultMode", defaultMode))
	}
	return fmt.Sprintf("{name: %s, %s: {%s%s}}", name, src, fields, modeFieldNamed("defaultMode", defaultMode))
}

// write makes the object (nil data: removes it).
func (k objKind) write(c *conf, name string, data map[string]string) {
	if k.secret {
		c.writeSecret(name, data)
	} else {
		c.writeConfigMap(name, data)
	}
}

// data is the upstream test object: data-1, data-2 and data-3.
func (k objKind) data() map[string]string {
	return map[string]string{"data-1": k.value(1), "data-2": k.value(2), "data-3": k.value(3)}
}

func configMapVolumeScenarios() []scenario {
	var out []scenario
	for _, k := range objKinds {
		if !k.secret {
			out = append(out, objScenarios(k)...)
		}
	}
	return out
}

func secretVolumeScenarios() []scenario {
	var out []scenario
	for _, k := range objKinds {
		if k.secret {
			out = append(out, objScenarios(k)...)
		}
	}
	return out
}

// objScenarios are the scenarios of configmap_volume.go, projected_configmap.go,
// secrets_volume.go and projected_secret.go for one kind of volume.
func objScenarios(k objKind) []scenario {
	g, mp := k.group, k.mountPath
	short := strings.NewReplacer("configmap_volume", "cmv", "projected_configmap", "pcm", "secrets_volume", "sv", "projected_secret", "psv").Replace(g)
	// One mounttest container with the object at mp; sc is the pod's securityContext fields.
	pod := func(c *conf, name string, vol string, sc string, readOnly bool, args ...string) {
		podSC := ""
		if sc != "" {
			podSC = "  securityContext: {" + sc + "}\n"
		}
		c.apply(name, manifest(name, "  terminationGracePeriodSeconds: 1\n  restartPolicy: Never\n"+podSC+"  volumes: ["+vol+"]\n  containers:\n"+
			ctr("name: agnhost-container", "image: "+agnhostImage, cmd("args", append([]string{"mounttest"}, args...)...),
				fmt.Sprintf("volumeMounts: [{name: vol, mountPath: %s, readOnly: %v}]", mp, readOnly))))
	}
	// doConfigMapE2EWithoutMappings / doSecretE2EWithoutMapping.
	withoutMappings := func(c *conf, name string, defaultMode int, sc string) {
		obj := name + "-obj"
		k.write(c, obj, k.data())
		pod(c, name, k.volume("vol", obj, defaultMode), sc, !k.secret, "--file_content="+mp+"/data-1", "--file_mode="+mp+"/data-1")
		mode := os.FileMode(0o644)
		if defaultMode != 0 {
			mode = os.FileMode(defaultMode)
		}
		c.expectOutputRegexp(name, "agnhost-container", regexp.QuoteMeta(fmt.Sprintf("content of file %q: value-1", mp+"/data-1")), modeLine(mp+"/data-1", mode))
	}
	// doConfigMapE2EWithMappings / doSecretE2EWithMapping.
	withMappings := func(c *conf, name string, itemMode int, sc string, checkMode bool) {
		obj := name + "-obj"
		k.write(c, obj, k.data())
		key, path := "data-2", "path/to/data-2"
		if k.secret {
			key, path = "data-1", "new-path-data-1"
		}
		file := mp + "/" + path
		pod(c, name, k.volume("vol", obj, 0, fmt.Sprintf("items: [{key: %s, path: %s%s}]", key, path, modeField(itemMode))), sc, !k.secret, "--file_content="+file, "--file_mode="+file)
		want := []string{regexp.QuoteMeta(fmt.Sprintf("content of file %q: %s", file, strings.TrimSuffix(k.value(int(key[len(key)-1]-'0')), "\n")))}
		if checkMode {
			mode := os.FileMode(0o644)
			if itemMode != 0 {
				mode = os.FileMode(itemMode)
			}
			want = append(want, modeLine(file, mode))
		}
		c.expectOutputRegexp(name, "agnhost-container", want...)
	}
	// Non-optional volumes of a missing object or key: the pod never runs; the upstream
	// scenarios wait PodStartTimeout (5 min) for that, the ports 30 s, and also expect the
	// kubelet's FailedMount event.
	failNonOptional := func(c *conf, name string, withObject bool) {
		obj := name + "-obj"
		rest := []string{"optional: false"}
		if withObject {
			k.write(c, obj, k.data())
			rest = append([]string{"items: [{key: data-4, path: path/to/data-4}]"}, rest...)
		}
		pod(c, name, k.volume("vol", obj, 0, rest...), "", true, "--break_on_expected_content=false", "--retry_time=300", "--file_content_in_loop="+mp+"/data-1")
		// The daemon keeps a bounded ring of events for all pods: the FailedMount event is looked
		// for while the pod waits; then the pod must not run for 30 s more.
		c.until(podStartTimeout, name+": a FailedMount event", func() (bool, string) {
			if p := c.pod(name); p != nil && p.Status.Phase == corev1.PodRunning {
				c.t.Fatalf("pod with a non-optional volume of a missing object runs: %s", summary(p))
			}
			var seen []string
			for _, e := range c.events(name) {
				if e.Reason == "FailedMount" {
					return true, ""
				}
				seen = append(seen, e.Reason)
			}
			return false, strings.Join(seen, " ")
		})
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
			if p := c.pod(name); p != nil && p.Status.Phase == corev1.PodRunning {
				c.t.Fatalf("pod with a non-optional volume of a missing object runs: %s", summary(p))
			}
		}
	}
	// The upstream names differ a little between the configMap and the secret files.
	kind, itemMode, multi := "configMap", "Item mode", "should be consumable in multiple volumes in the same pod"
	if k.secret {
		kind, itemMode, multi = "secret", "Item Mode", "should be consumable in multiple volumes in a pod"
	}
	out := []scenario{
		{g, "should be consumable from pods in volume", func(c *conf) { withoutMappings(c, short+"-plain", 0, "") }},
		{g, "should be consumable from pods in volume with defaultMode set", func(c *conf) { withoutMappings(c, short+"-defaultmode", 0o400, "") }},
		{g, "should be consumable from pods in volume as non-root with defaultMode and fsGroup set", func(c *conf) {
			withoutMappings(c, short+"-nonroot-mode-fsgroup", 0o440, "runAsUser: 1000, fsGroup: 1001")
		}},
		{g, "should be consumable from pods in volume with mappings", func(c *conf) { withMappings(c, short+"-map", 0, "", true) }},
		{g, "should be consumable from pods in volume with mappings and " + itemMode + " set", func(c *conf) { withMappings(c, short+"-map-mode", 0o400, "", true) }},
		{g, multi, func(c *conf) {
			name := short + "-multi"
			obj := name + "-obj"
			k.write(c, obj, k.data())
			mp2 := mp + "-2"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  volumes: ["+k.volume("vol", obj, 0)+", "+k.volume("vol-2", obj, 0)+"]\n  containers:\n"+
				ctr("name: volume-test", "image: "+agnhostImage, cmd("args", "mounttest", "--file_content="+mp+"/data-1", "--file_mode="+mp+"/data-1"),
					fmt.Sprintf("volumeMounts: [{name: vol, mountPath: %s, readOnly: true}, {name: vol-2, mountPath: %s, readOnly: true}]", mp, mp2))))
			c.expectOutputRegexp(name, "volume-test", regexp.QuoteMeta(fmt.Sprintf("content of file %q: value-1", mp+"/data-1")), modeLine(mp+"/data-1", 0o644))
		}},
		{g, "optional updates should be reflected in volume", func(c *conf) {
			name := short + "-opt-upd"
			del, upd, cre := name+"-del", name+"-upd", name+"-create"
			k.write(c, del, map[string]string{"data-1": "value-1"})
			k.write(c, upd, map[string]string{"data-1": "value-1"})
			mount := func(v, sub string) string {
				return fmt.Sprintf("volumeMounts: [{name: %s, mountPath: %s, readOnly: true}]", v, mp+"s/"+sub)
			}
			loop := func(file string) string {
				return cmd("args", "mounttest", "--break_on_expected_content=false", "--retry_time=300", "--file_content_in_loop="+mp+"s/"+file)
			}
			c.apply(name, manifest(name, "  restartPolicy: Never\n  volumes: ["+k.volume("deletevol", del, 0, "optional: true")+", "+
				k.volume("updatevol", upd, 0, "optional: true")+", "+k.volume("createvol", cre, 0, "optional: true")+"]\n  containers:\n"+
				ctr("name: del-volume-test", "image: "+agnhostImage, loop("delete/data-1"), mount("deletevol", "delete"))+
				ctr("name: upd-volume-test", "image: "+agnhostImage, loop("update/data-3"), mount("updatevol", "update"))+
				ctr("name: create-volume-test", "image: "+agnhostImage, loop("create/data-1"), mount("createvol", "create"))))
			c.waitRunning(name)
			logsHave := func(container, want string) {
				c.until(2*time.Minute, container+" logs "+want, func() (bool, string) {
					out := c.logs(name, container)
					return strings.Contains(out, want), out
				})
			}
			logsHave("create-volume-test", "Error reading file "+mp+"s/create/data-1")
			logsHave("upd-volume-test", "Error reading file "+mp+"s/update/data-3")
			logsHave("del-volume-test", "value-1")
			k.write(c, del, nil)
			k.write(c, upd, map[string]string{"data-3": "value-3"})
			k.write(c, cre, map[string]string{"data-1": "value-1"})
			logsHave("create-volume-test", "value-1")
			logsHave("upd-volume-test", "value-3")
			logsHave("del-volume-test", "Error reading file "+mp+"s/delete/data-1")
		}},
		{g, "Should fail non-optional pod creation due to " + kind + " object does not exist", func(c *conf) { failNonOptional(c, short+"-nonopt-obj", false) }},
		{g, "Should fail non-optional pod creation due to the key in the " + kind + " object does not exist", func(c *conf) {
			failNonOptional(c, short+"-nonopt-key", true)
		}},
	}
	if !k.secret {
		out = append(out,
			scenario{g, "should be consumable from pods in volume as non-root", func(c *conf) { withoutMappings(c, short+"-nonroot", 0, "runAsUser: 1000") }},
			scenario{g, "should be consumable from pods in volume as non-root with FSGroup", func(c *conf) {
				withoutMappings(c, short+"-nonroot-fsgroup", 0, "runAsUser: 1000, fsGroup: 1001")
			}},
			scenario{g, "should be consumable from pods in volume with mappings as non-root", func(c *conf) {
				withMappings(c, short+"-map-nonroot", 0, "runAsUser: 1000", true)
			}},
			scenario{g, "should be consumable from pods in volume with mappings as non-root with FSGroup", func(c *conf) {
				withMappings(c, short+"-map-nonroot-fsgroup", 0, "runAsUser: 1000, fsGroup: 1001", false)
			}},
			scenario{g, "updates should be reflected in volume", func(c *conf) {
				name := short + "-upd"
				obj := name + "-obj"
				k.write(c, obj, map[string]string{"data-1": "value-1"})
				pod(c, name, k.volume("vol", obj, 0), "", true, "--break_on_expected_content=false", "--retry_time=300", "--file_content_in_loop="+mp+"/data-1")
				c.waitRunning(name)
				c.until(2*time.Minute, "value-1", func() (bool, string) {
					out := c.logs(name, "agnhost-container")
					return strings.Contains(out, "value-1"), out
				})
				k.write(c, obj, map[string]string{"data-1": "value-2"})
				c.until(2*time.Minute, "value-2", func() (bool, string) {
					out := c.logs(name, "agnhost-container")
					return strings.Contains(out, "value-2"), out
				})
			}},
		)
	}
	if g == "configmap_volume" {
		out = append(out, scenario{g, "binary data should be reflected in volume", func(c *conf) {
			name := "cmv-binary"
			obj := name + "-obj"
			k.write(c, obj, map[string]string{"data-1": "value-1", "dump.bin": string([]byte{0xde, 0xca, 0xfe, 0xba, 0xd0, 0xfe, 0xff})})
			c.apply(name, manifest(name, "  restartPolicy: Never\n  volumes: ["+k.volume("vol", obj, 0)+"]\n  containers:\n"+
				ctr("name: agnhost-container", "image: "+agnhostImage, cmd("args", "mounttest", "--break_on_expected_content=false", "--retry_time=300", "--file_content_in_loop="+mp+"/data-1"),
					fmt.Sprintf("volumeMounts: [{name: vol, mountPath: %s, readOnly: true}]", mp))+
				ctr("name: configmap-volume-binary-test", "image: "+busyboxImage, cmd("command", "hexdump", "-C", mp+"/dump.bin"),
					fmt.Sprintf("volumeMounts: [{name: vol, mountPath: %s, readOnly: true}]", mp))))
			c.waitPod(name, podStartTimeout, "running", func(p *corev1.Pod) (bool, string) { return p.Status.Phase == corev1.PodRunning, summary(p) })
			for _, w := range []struct{ container, want string }{{"agnhost-container", "value-1"}, {"configmap-volume-binary-test", "de ca fe ba d0 fe ff"}} {
				c.until(2*time.Minute, w.container+" logs", func() (bool, string) {
					out := c.logs(name, w.container)
					return strings.Contains(out, w.want), out
				})
			}
		}})
	}
	return out
}

func projectedCombinedScenarios() []scenario {
	return []scenario{{"projected_combined", "should project all components that make up the projection API", func(c *conf) {
		name := "projected-volume-all"
		c.writeSecret("secret-projected-all-test-volume", map[string]string{"secret-data": "secret-value-1"})
		c.writeConfigMap("configmap-projected-all-test-volume", map[string]string{"configmap-data": "configmap-value-1"})
		c.apply(name, manifest(name, "  restartPolicy: Never\n  volumes: [{name: podinfo, projected: {sources: ["+
			"{downwardAPI: {items: [{path: podname, fieldRef: {apiVersion: v1, fieldPath: metadata.name}}]}}, "+
			"{secret: {name: secret-projected-all-test-volume}}, {configMap: {name: configmap-projected-all-test-volume}}]}}]\n  containers:\n"+
			ctr("name: projected-all-volume-test", "image: "+busyboxImage, cmd("command", "sh", "-c", "cat /all/podname && cat /all/secret-data && cat /all/configmap-data"),
				"volumeMounts: [{name: podinfo, mountPath: /all}]")))
		c.expectOutput(name, "projected-all-volume-test", name, "secret-value-1", "configmap-value-1")
	}}}
}

// Package probe runs Kubernetes container probes (startup, liveness, readiness) for minipod.
//
// It has two layers:
//
//   - Do performs one probe attempt (httpGet, tcpSocket, grpc or exec) the way the kubelet's
//     prober does: HTTP status 200..399 succeeds, redirects are followed only on the same host
//     (a redirect elsewhere is a Warning: a success with a message for a ProbeWarning event),
//     TLS is not verified, the User-Agent is kube-probe/<major>.<minor>, a Host header
//     overrides the request host, named ports are resolved from the container's ports, gRPC
//     uses the standard health service, and exec commands get $(VAR) references to the
//     container's static env expanded. Messages are worded as the kubelet words them, so a
//     caller can build events such as "Liveness probe failed: <msg>".
//
//   - Manager schedules probes for many containers with a single goroutine and a timer heap,
//     starting due attempts on a bounded number of slots shared fairly between pods (a probe
//     that hangs gives its slot up after a second, one pod holds a quarter of the slots at
//     most), and counts consecutive results against successThreshold and failureThreshold (see
//     tracker) before reporting a verdict change.
//
// Results follow the kubelet: Unknown means the attempt itself could not be made (for example,
// an unknown named port or an exec transport error); the kubelet discards such attempts, and so
// does Manager, which retries them up to three times per period and never counts them.
package probe

// pause is the sandbox ("infra") container of every pod on ci/kube.sh's node. There is no image registry
// here, so ci/kube.sh builds this static binary and imports it as an image instead of pulling one.
//
// It holds the pod's namespaces open, reaps zombies (it is PID 1 when the pod shares its PID namespace)
// and exits on SIGINT/SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

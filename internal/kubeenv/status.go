package kubeenv

// BinariesCached returns the assets directory and whether EnsureBinaries would return it
// at once, so that callers can warn before a build that takes minutes.
func BinariesCached() (dir string, cached bool, err error) {
	dir, err = AssetsDir()
	if err != nil {
		return "", false, err
	}
	return dir, haveBinaries(dir, allBinaries...), nil
}

// ProcessState is one process of an environment, as its pid file in the directory shows it.
type ProcessState struct {
	Name string
	// PID is 0 when there is no pid file: the process was not started (e.g. the
	// controller-manager with NoControllerManager) or was stopped.
	PID int
	// Running is false for a pid whose process is gone or runs another binary now.
	Running bool
}

// DirState reports etcd, kube-apiserver and kube-controller-manager of an environment
// started in dir, e.g. by another process with Detach, from the pid files Start wrote.
func DirState(dir string) ([]ProcessState, error) {
	states := make([]ProcessState, 0, len(allBinaries))
	for _, name := range allBinaries {
		pid, alive, err := livePid(dir, name)
		if err != nil {
			return nil, err
		}
		states = append(states, ProcessState{Name: name, PID: pid, Running: alive})
	}
	return states, nil
}

// Package k8sapi is the shared "how to reach the Kubernetes API" configuration of our
// components, with the keys and values of contrib's Kubernetes components (auth_type
// serviceAccount or kubeConfig), so one cluster identity is configured the same way
// everywhere and components with equal settings share one k8scache.Cache.
package k8sapi // import "github.com/kestrelai/otelcol-kestrel/internal/k8sapi"

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// AuthType says how a component authenticates to the Kubernetes API.
type AuthType string

const (
	// AuthTypeServiceAccount uses the pod's service account (in-cluster config).
	AuthTypeServiceAccount AuthType = "serviceAccount"
	// AuthTypeKubeConfig uses $KUBECONFIG or ~/.kube/config.
	AuthTypeKubeConfig AuthType = "kubeConfig"
)

// Config selects the apiserver and the identity used with it.
type Config struct {
	// AuthType is serviceAccount or kubeConfig.
	AuthType AuthType `mapstructure:"auth_type"`
	// Context selects a kubeconfig context (kubeConfig only); empty means the current one.
	Context string `mapstructure:"context"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Default is what a component running in the cluster needs.
func Default() Config {
	return Config{AuthType: AuthTypeServiceAccount}
}

// Validate checks the auth type and that a context is only given with a kubeconfig.
func (c *Config) Validate() error {
	switch c.AuthType {
	case AuthTypeServiceAccount:
		if c.Context != "" {
			return errors.New(`"context" applies only to auth_type kubeConfig`)
		}
	case AuthTypeKubeConfig:
	default:
		return fmt.Errorf("auth_type must be %q or %q, got %q", AuthTypeServiceAccount, AuthTypeKubeConfig, c.AuthType)
	}
	return nil
}

// RestConfig builds the client configuration. It fails outside a cluster with
// serviceAccount, and without a readable kubeconfig with kubeConfig.
func (c *Config) RestConfig() (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if c.AuthType == AuthTypeKubeConfig {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		overrides := &clientcmd.ConfigOverrides{CurrentContext: c.Context}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("building the Kubernetes client configuration (auth_type %s): %w", c.AuthType, err)
	}
	return rc, nil
}

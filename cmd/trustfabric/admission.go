package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/admission"
	"github.com/trustfabric/trustfabric/pkg/oci"
)

func init() { register(NewCmdAdmission) }

// NewCmdAdmission returns `trustfabric admission`.
func NewCmdAdmission() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "admission",
		Short:   "Kubernetes admission: gate Pods and workloads on the verification policy",
		Example: `  trustfabric admission serve --tls-cert tls.crt --tls-key tls.key --policy policy.yaml`,
	}
	cmd.AddCommand(newCmdAdmissionServe())
	return cmd
}

func newCmdAdmissionServe() *cobra.Command {
	var sc admission.ServeConfig
	var configFile, policyFile, level string
	var insecure []string
	var kube admission.KubeAPI
	pullSecrets := true
	cmd := &cobra.Command{
		Use:   "serve --tls-cert FILE --tls-key FILE (--config FILE | --policy FILE) [--addr HOST:PORT]",
		Short: "Run the validating (/validate) and mutating (/mutate) admission webhook and Gatekeeper's external data provider (/gatekeeper)",
		Example: `  trustfabric admission serve --tls-cert /tls/tls.crt --tls-key /tls/tls.key --policy /etc/trustfabric/policy.yaml
  trustfabric admission serve --tls-cert /tls/tls.crt --tls-key /tls/tls.key --config /etc/trustfabric/admission.yaml --addr :8443`,
		Long: `admission serve answers the Kubernetes API server's AdmissionReview requests
for Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs:
every container, init container and ephemeral container image must pass the
verification policy of its namespace (the same checks and words as
trustfabric verify). --policy applies one policy to every namespace; --config
maps namespaces (by name or label) to policies, with a default and exempt
namespaces. A request that cannot be verified (registry unreachable, time-out)
is denied with the reason. In a cluster (or with --kube-server), the registry
is read with the pod's imagePullSecrets and its service account's, then the
process's own credentials (docker config). See deploy/ and the README's "Gate a cluster".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (configFile == "") == (policyFile == "") {
				return errors.New("give exactly one of --config FILE or --policy FILE")
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
			}
			var cfg *admission.Config
			var err error
			if configFile != "" {
				cfg, err = admission.LoadConfig(configFile)
			} else {
				cfg, err = admission.SinglePolicy(policyFile)
			}
			if err != nil {
				return err
			}
			var ociOpts []oci.Option
			for _, h := range insecure {
				ociOpts = append(ociOpts, oci.WithInsecureRegistry(h))
			}
			client, err := oci.New(ociOpts...)
			if err != nil {
				return err
			}
			opts := []admission.Option{admission.WithOCIClient(client),
				admission.WithLogger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lv})))}
			if kube.Server == "" {
				if in, ok := admission.InCluster(); ok {
					kube = in
				}
			}
			if kube.Server != "" {
				labels, err := admission.KubeNamespaces(kube)
				if err != nil {
					return err
				}
				opts = append(opts, admission.WithNamespaceLabels(labels))
				if pullSecrets {
					pull, err := admission.KubePullSecrets(kube)
					if err != nil {
						return err
					}
					opts = append(opts, admission.WithPullSecrets(pull))
				}
			}
			w, err := admission.New(cmd.Context(), cfg, opts...)
			if err != nil {
				return err
			}
			return admission.Serve(cmd.Context(), w, sc, func(addr string) {
				fmt.Fprintf(cmd.OutOrStdout(), "admission webhook listening on https://%s (/validate, /mutate, /gatekeeper)\n", addr)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&sc.Addr, "addr", ":8443", "listen address HOST:PORT")
	f.StringVar(&sc.TLSCert, "tls-cert", "", "serving certificate (PEM), re-read when it changes (required)")
	f.StringVar(&sc.TLSKey, "tls-key", "", "serving key (PEM) (required)")
	f.StringVar(&sc.ClientCA, "client-ca", "", "CA bundle (PEM) whose client certificates may call /gatekeeper (Gatekeeper's mTLS); without one, /gatekeeper answers 401")
	f.StringVar(&configFile, "config", "", "admission config (kind AdmissionConfig): namespaces to verification policies")
	f.StringVar(&policyFile, "policy", "", "one verification policy for every namespace")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host:port to reach over plain HTTP (repeatable; loopback registries need not be listed)")
	f.StringVar(&kube.Server, "kube-server", "", "Kubernetes API URL to read namespace labels and pull secrets from (default: in cluster)")
	f.StringVar(&kube.TokenFile, "kube-token-file", "", "bearer token file for --kube-server")
	f.StringVar(&kube.CAFile, "kube-ca", "", "CA bundle of --kube-server")
	f.BoolVar(&pullSecrets, "pull-secrets", true, "read registries with the pod's and its service account's imagePullSecrets (needs the Kubernetes API; RBAC get on secrets and serviceaccounts)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	_ = cmd.MarkFlagRequired("tls-cert")
	_ = cmd.MarkFlagRequired("tls-key")
	return cmd
}

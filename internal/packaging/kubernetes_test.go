package packaging

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// k8sObject holds the few fields of the manifests this test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
	Spec       struct {
		Replicas int              `yaml:"replicas"`
		Selector yaml.Node        `yaml:"selector"`
		Ports    []k8sServicePort `yaml:"ports"`
		Template k8sPodTemplate   `yaml:"template"`
	} `yaml:"spec"`
}

type k8sServicePort struct {
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type k8sPodTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		SecurityContext struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
			RunAsUser    int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []k8sContainer `yaml:"containers"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// k8sObjects decodes every document of every deploy/kubernetes/*.yaml file, by kind.
func k8sObjects(t *testing.T) (map[string]k8sObject, string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/kubernetes/*.yaml (err %v)", err)
	}
	objs := map[string]k8sObject{}
	var text strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		text.Write(b)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if _, dup := objs[o.Kind]; dup {
				t.Fatalf("two objects of kind %s", o.Kind)
			}
			objs[o.Kind] = o
		}
	}
	return objs, text.String()
}

// The Kubernetes manifests run two non-root replicas probed on /healthz, fed by a Secret with
// exactly the three secret values, behind a Service on the container's port.
func TestKubernetesManifests(t *testing.T) {
	objs, text := k8sObjects(t)
	dep, svc, sec := objs["Deployment"], objs["Service"], objs["Secret"]
	if dep.Kind == "" || svc.Kind == "" || sec.Kind == "" {
		t.Fatalf("want a Deployment, a Service and a Secret, got %v", keys(objs))
	}
	if dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template
	if !pod.Spec.SecurityContext.RunAsNonRoot || pod.Spec.SecurityContext.RunAsUser != 65532 {
		t.Errorf("pod securityContext %+v, want runAsNonRoot with the image's user 65532", pod.Spec.SecurityContext)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	checkArgs(t, "container args", c.Args)
	if !slices.Equal(c.Args, []string{"--transport", "http", "--addr", "0.0.0.0:8080"}) {
		t.Errorf("container args %v", c.Args)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 {
		t.Fatalf("container ports %+v, want 8080", c.Ports)
	}
	port := c.Ports[0].Name
	for name, p := range map[string]k8sProbe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != port {
			t.Errorf("%s probe %+v, want GET /healthz on port %q", name, p.HTTPGet, port)
		}
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" ||
		c.Resources.Limits["cpu"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v need cpu and memory requests and limits", c.Resources)
	}
	if !strings.Contains(text, "from measured figures, see BENCHMARKS.md") {
		t.Error("the resource figures must say where they come from (BENCHMARKS.md)")
	}
	for _, e := range c.Env {
		if !knownEnv[e.Name] {
			t.Errorf("container env %q is not a kubeq-mcp variable", e.Name)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != sec.Metadata.Name {
		t.Errorf("envFrom %+v, want the Secret %q", c.EnvFrom, sec.Metadata.Name)
	}
	secretKeys := keys(sec.StringData)
	for k := range sec.Data {
		secretKeys = append(secretKeys, k)
	}
	sort.Strings(secretKeys)
	if want := []string{"KUBEQ_MCP_HTTP_TOKEN", "KUBEQ_MCP_STATE_KEY", "KUBE_Q_API_KEY"}; !slices.Equal(secretKeys, want) {
		t.Errorf("Secret keys %v, want %v", secretKeys, want)
	}
	var selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := dep.Spec.Selector.Decode(&selector); err != nil || len(selector.MatchLabels) == 0 {
		t.Fatalf("Deployment selector: %v", err)
	}
	for k, v := range selector.MatchLabels {
		if pod.Metadata.Labels[k] != v {
			t.Errorf("pod labels %v do not match the Deployment selector %v", pod.Metadata.Labels, selector.MatchLabels)
		}
	}
	var svcSelector map[string]string
	if err := svc.Spec.Selector.Decode(&svcSelector); err != nil {
		t.Fatalf("Service selector: %v", err)
	}
	for k, v := range svcSelector {
		if pod.Metadata.Labels[k] != v {
			t.Errorf("Service selector %v does not select the pods %v", svcSelector, pod.Metadata.Labels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != port {
		t.Errorf("Service ports %+v, want targetPort %q", svc.Spec.Ports, port)
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

{{/* Resource names: a fixed prefix, so Z2JH's static values can name them. */}}
{{- define "gpupool.name" -}}
{{- printf "%s-%s" .root.Values.namePrefix .suffix | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gpupool.labels" -}}
app.kubernetes.io/name: jupyterhub-gpupool
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gpupool.selectorLabels" -}}
app.kubernetes.io/name: jupyterhub-gpupool
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gpupool.image" -}}
{{- printf "%s:%s" .Values.image.name (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "gpupool.tokensSecret" -}}
{{- .Values.tokens.existingSecret | default (include "gpupool.name" (dict "root" . "suffix" "tokens")) -}}
{{- end -}}

{{/* The service's in-cluster address, as the hub and the agents reach it. */}}
{{- define "gpupool.serviceURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "gpupool.name" (dict "root" . "suffix" "service")) .Release.Namespace (int .Values.service.port) -}}
{{- end -}}

{{/* Secret and key that hold the database URL. */}}
{{- define "gpupool.databaseSecret" -}}
{{- if and (eq .Values.database.type "postgresql") .Values.database.postgresql.existingSecret -}}
{{- .Values.database.postgresql.existingSecret -}}
{{- else -}}
{{- include "gpupool.name" (dict "root" . "suffix" "database") -}}
{{- end -}}
{{- end -}}

{{- define "gpupool.databaseSecretKey" -}}
{{- if and (eq .Values.database.type "postgresql") .Values.database.postgresql.existingSecret -}}
{{- .Values.database.postgresql.existingSecretKey -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{/* A value kept from the live Secret on upgrade, else given, else generated. */}}
{{- define "gpupool.keptSecretValue" -}}
{{- $live := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if .given -}}
{{- .given -}}
{{- else if and $live (hasKey $live.data .key) -}}
{{- index $live.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}

{{- define "gpupool.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "gpupool.containerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end -}}

{{/* KubernetesGpuPlacement traitlets, shared by the hub (sessions) and the service (jobs). */}}
{{- define "gpupool.placementConfig" -}}
{{- dict
  "pool_node_label" (dict .Values.pool.nodeLabel.key .Values.pool.nodeLabel.value)
  "pool_taint" .Values.pool.taint
  "runtime_class_name" .Values.pool.runtimeClassName
  "device_list_strategy" .Values.pool.deviceListStrategy
  "dra_device_class_name" .Values.pool.dra.deviceClassName
  "fraction_enforcement" .Values.pool.fractionEnforcement
  "hami_core_library" .Values.pool.hamiCore.hostLibraryPath
  "mps_pipe_directory" .Values.pool.mps.pipeDirectory
  | toJson -}}
{{- end -}}

{{/* Values that cannot work fail the render, saying what to change. */}}
{{- define "gpupool.validate" -}}
{{- $strategies := list "envvar" "volume-mounts" "dra" }}
{{- if not (has .Values.pool.deviceListStrategy $strategies) }}
{{- fail (printf "pool.deviceListStrategy %q is not known: set envvar or volume-mounts (the NVIDIA container toolkit), or dra (Dynamic Resource Allocation with the NVIDIA DRA driver, Kubernetes 1.34+)" .Values.pool.deviceListStrategy) }}
{{- end }}
{{- if eq .Values.pool.deviceListStrategy "dra" }}
{{- $version := .Values.kubernetesVersion | default .Capabilities.KubeVersion.Version }}
{{- if not (semverCompare ">=1.34.0-0" $version) }}
{{- fail (printf "pool.deviceListStrategy dra needs Kubernetes 1.34 or newer (resource.k8s.io/v1), and this cluster is %s: upgrade the cluster, or set pool.deviceListStrategy to envvar (the NVIDIA container toolkit, with the device plugin off on pool nodes)" $version) }}
{{- end }}
{{- end }}
{{- end -}}

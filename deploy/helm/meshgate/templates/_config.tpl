{{/*
meshgate.yaml, built from the values as one object (src/config/schema.ts). Every path names
a file a volume in deployment.yaml puts there; every secret is { file: PATH }, never a value.
*/}}

{{- define "meshgate.needsServerCert" -}}
{{- if or .Values.mysql.enabled .Values.admin.enabled .Values.signer.enabled (and .Values.firestore.enabled (eq .Values.firestore.mode "mtls")) -}}true{{- end -}}
{{- end -}}

{{- define "meshgate.config" -}}
{{- $v := .Values -}}
{{- $c := dict -}}
{{- if include "meshgate.needsServerCert" . -}}
{{- $_ := set $c "tls" (dict "cert" "/etc/meshgate/tls/server.crt" "key" "/etc/meshgate/tls/server.key") -}}
{{- end -}}

{{- $bundles := list -}}
{{- if $v.trust.istioRootCa -}}{{- $bundles = append $bundles "/etc/meshgate/trust/istio/root-cert.pem" -}}{{- end -}}
{{- range $i, $b := $v.trust.bundles -}}{{- $bundles = append $bundles (printf "/etc/meshgate/trust/bundle-%d/bundle.pem" $i) -}}{{- end -}}
{{- $_ := set $c "trust" (dict "bundles" $bundles "trustDomains" $v.trust.trustDomains) -}}

{{- if $v.mysql.enabled -}}
{{- $m := $v.mysql -}}
{{- $_ := set $c "listener" (dict "host" "0.0.0.0" "port" $m.port "tls" (dict "mode" $m.tlsMode "required" $m.tlsRequired) "maxClientMessageBytes" $m.maxClientMessageBytes "timeouts" $m.timeouts) -}}
{{- $u := $v.upstream -}}
{{- $up := dict "host" $u.host "port" $u.port "connectTimeoutMs" $u.connectTimeoutMs "pool" $u.pool -}}
{{- if $u.tls.enabled -}}
{{- $_ := set $up "tls" (dict "ca" "/etc/meshgate/upstream-tls/ca.pem" "cert" "/etc/meshgate/upstream-tls/client.crt" "key" "/etc/meshgate/upstream-tls/client.key" "verify" $u.tls.verify) -}}
{{- end -}}
{{- if $u.credentials.enabled -}}
{{- $cr := omit $u.credentials "enabled" "admin" -}}
{{- $_ := set $cr "admin" (dict "user" $u.credentials.admin.user "password" (dict "file" "/etc/meshgate/secrets/mariadb-admin/password")) -}}
{{- $_ := set $up "credentials" $cr -}}
{{- end -}}
{{- $roles := dict -}}
{{- range $i, $name := keys $u.roles | sortAlpha -}}
{{- $role := get $u.roles $name -}}
{{- $_ := set $roles $name (dict "user" $role.user "password" (dict "file" (printf "/etc/meshgate/secrets/role-%d/password" $i))) -}}
{{- end -}}
{{- if $roles -}}{{- $_ := set $up "roles" $roles -}}{{- end -}}
{{- $_ := set $c "upstream" $up -}}
{{- end -}}

{{- $state := dict "replicaId" "${env:POD_NAME}" -}}
{{- if $v.state.postgres.enabled -}}
{{- $_ := set $state "postgres" (dict "url" (dict "file" "/etc/meshgate/secrets/state-postgres/url") "schema" $v.state.postgres.schema) -}}
{{- else -}}
{{- $_ := set $state "embedded" (dict "dir" "/var/lib/meshgate/state") -}}
{{- end -}}
{{- $_ := set $c "state" $state -}}

{{- if $v.firestore.enabled -}}
{{- $f := $v.firestore -}}
{{- $fs := dict "host" "0.0.0.0" "port" $f.port "project" $f.project "maxMessageBytes" $f.maxMessageBytes "timeouts" $f.timeouts -}}
{{- if eq $f.mode "xfcc" -}}
{{- $_ := set $fs "tls" "plaintext" -}}
{{- $_ := set $fs "trustedHops" $f.trustedHops -}}
{{- else -}}
{{- $_ := set $fs "tls" "mtls" -}}
{{- end -}}
{{- if $f.upstream.emulator -}}
{{- $_ := set $fs "upstream" (dict "emulator" $f.upstream.emulator) -}}
{{- else -}}
{{- $_ := set $fs "upstream" (dict "google" (dict "endpoint" $f.upstream.googleEndpoint)) -}}
{{- end -}}
{{- $_ := set $c "firestore" $fs -}}
{{- end -}}

{{- if $v.admin.enabled -}}
{{- $_ := set $c "admin" (dict "host" "0.0.0.0" "port" $v.admin.port "principals" $v.admin.principals) -}}
{{- end -}}

{{- if $v.signer.enabled -}}
{{- $s := $v.signer -}}
{{- $_ := set $c "signer" (dict "host" "0.0.0.0" "port" $s.port "caDir" "/etc/meshgate/signer-ca" "svidTtlSeconds" $s.svidTtlSeconds "joinTokens" $s.joinTokens "renewWithSvid" $s.renewWithSvid "issuancesPerMinute" $s.issuancesPerMinute) -}}
{{- end -}}

{{- $p := dict "openSessions" $v.policy.openSessions -}}
{{- if eq $v.policy.source "git" -}}
{{- $g := $v.policy.git -}}
{{- $git := dict "url" $g.url "ref" $g.ref "path" $g.path "interval" $g.interval "timeout" $g.timeout "workDir" "/var/lib/meshgate/policy-git" -}}
{{- if $g.trustedKeys -}}{{- $_ := set $git "trustedKeys" $g.trustedKeys -}}{{- end -}}
{{- $_ := set $p "git" $git -}}
{{- else -}}
{{- $_ := set $p "dir" "/etc/meshgate/policy" -}}
{{- $_ := set $p "watch" $v.policy.watch -}}
{{- $_ := set $p "pollInterval" $v.policy.pollInterval -}}
{{- end -}}
{{- $_ := set $c "policy" $p -}}

{{- $_ := set $c "metrics" (dict "listen" (printf "0.0.0.0:%d" (int $v.metrics.port)) "upstreamCheckInterval" $v.metrics.upstreamCheckInterval) -}}

{{- $a := $v.audit -}}
{{- $audit := dict "file" "/var/log/meshgate/audit.jsonl" "durability" $a.durability "tagStatements" $a.tagStatements "statementBytes" $a.statementBytes "parameterBytes" $a.parameterBytes "highWaterEvents" $a.highWaterEvents "maxWaitMs" $a.maxWaitMs -}}
{{- if $a.rotate -}}{{- $_ := set $audit "rotate" $a.rotate -}}{{- end -}}
{{- if $a.checkpoint -}}{{- $_ := set $audit "checkpoint" $a.checkpoint -}}{{- end -}}
{{- if $a.signingKey.existingSecret -}}{{- $_ := set $audit "signingKey" "/etc/meshgate/audit-key/audit-signing.key" -}}{{- end -}}
{{- if $a.export.postgres.enabled -}}
{{- $e := $a.export.postgres -}}
{{- $_ := set $audit "export" (dict "postgres" (dict "url" (dict "file" "/etc/meshgate/secrets/audit-postgres/url") "table" $e.table "batch" $e.batch "interval" $e.interval)) -}}
{{- end -}}
{{- $_ := set $c "audit" $audit -}}

{{- $throttle := deepCopy $v.throttle -}}
{{- if $v.redis.enabled -}}
{{- $url := $v.redis.url -}}
{{- if $v.redis.existingSecret -}}{{- $url = dict "file" "/etc/meshgate/secrets/redis/url" -}}{{- end -}}
{{- $_ := set $throttle "shared" (dict "redis" (dict "url" $url "keyPrefix" $v.redis.keyPrefix "timeout" $v.redis.timeout)) -}}
{{- end -}}
{{- if $throttle -}}{{- $_ := set $c "throttle" $throttle -}}{{- end -}}
{{- if $v.tokens -}}{{- $_ := set $c "tokens" $v.tokens -}}{{- end -}}
{{- if $v.tracing -}}{{- $_ := set $c "tracing" $v.tracing -}}{{- end -}}

{{- $_ := set $c "shutdown" (dict "gracePeriod" $v.shutdown.gracePeriod) -}}

{{- $c = mustMergeOverwrite $c (deepCopy $v.extraConfig) -}}
{{- if and (get $c "signer") (not (get $c "tls")) -}}
{{- fail "the signer serves HTTPS with meshgate's server certificate, and this configuration has none: turn the signer on with signer.enabled (the chart then mounts tls.existingSecret), not through extraConfig.signer" -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

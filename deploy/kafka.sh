#!/usr/bin/env bash
# deploy/kafka.sh: a real, single-node Apache Kafka 4.x broker on loopback,
# assembled from Maven artifacts (no Docker, no tarball download).
#
# Usage: deploy/kafka.sh up|down|status|logs [-f]|bootstrap|sasl-env|fetch|version|clean
#
#   up         fetch the broker's jars once (cached), format storage once,
#              start the broker in the background and wait until it answers
#              an ApiVersions request; prints KAFKA_BROKERS=127.0.0.1:PORT,
#              then the sasl-env lines. Already up: says so and exits 0.
#   down       stop the broker (SIGTERM, then SIGKILL after 30 s); exits 0
#              when it was not running. Data is kept.
#   status     exit 0 and print the address when up, exit 3 when down.
#   logs [-f]  last ${LINES:-100} lines of the broker log (-f follows it).
#   bootstrap  print the broker address (host:port) whether up or not.
#   sasl-env   print KAFKA_SASL_SSL_BROKERS=host:port and KAFKA_TLS_CA_FILE=path
#              (the SASL_SSL listener and the CA to trust for it), and
#              KAFKA_MTLS_BROKERS, KAFKA_TLS_CLIENT_CERT, KAFKA_TLS_CLIENT_KEY
#              (the mutual TLS listener and a client certificate and key it
#              accepts); before the first 'up' of this script's version,
#              nothing but a note.
#   fetch      only fetch the jars into the cache.
#   version    print the pinned Kafka version.
#   clean      down, then delete this port's state (data, logs, config).
#
# Environment:
#   KAFKA_PORT            PLAINTEXT listener port on 127.0.0.1 (default 19092)
#   KAFKA_CONTROLLER_PORT KRaft controller port on 127.0.0.1 (default KAFKA_PORT+1)
#   KAFKA_SASL_PORT       SASL_SSL listener port on 127.0.0.1 (default KAFKA_PORT+2):
#                         TLS with a self-signed certificate made on the first
#                         'up', SASL PLAIN (user leadscore, password
#                         leadscore-plain) and SCRAM-SHA-256/512 (users are
#                         created through the PLAINTEXT listener, e.g. by kadm)
#   KAFKA_MTLS_PORT       TLS listener requiring a client certificate, on
#                         127.0.0.1 (default KAFKA_PORT+3)
#   KAFKA_HEAP            broker -Xmx (default 1g)
#   KAFKA_START_TIMEOUT   seconds `up` waits for the broker (default 120)
#   LEADSCORE_KAFKA_HOME  cache and state root (default ~/.cache/leadscore/kafka)
#   JAVA_HOME             Java 17+ to use (default: java on PATH)
#
# See deploy/README.md for the broker settings and why each is set.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly POM="${SCRIPT_DIR}/kafka/pom.xml"
readonly LOG4J_CONFIG="${SCRIPT_DIR}/kafka/log4j2.properties"

readonly HOST=127.0.0.1
readonly PORT="${KAFKA_PORT:-19092}"
if [[ "${PORT}" =~ ^[0-9]+$ ]]; then
  readonly CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
  readonly SASL_PORT="${KAFKA_SASL_PORT:-$((PORT + 2))}"
  readonly MTLS_PORT="${KAFKA_MTLS_PORT:-$((PORT + 3))}"
else
  readonly CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-}"
  readonly SASL_PORT="${KAFKA_SASL_PORT:-}"
  readonly MTLS_PORT="${KAFKA_MTLS_PORT:-}"
fi
readonly HEAP="${KAFKA_HEAP:-1g}"
readonly START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
readonly KHOME="${LEADSCORE_KAFKA_HOME:-${HOME}/.cache/leadscore/kafka}"
readonly STATE="${KHOME}/broker-${PORT}"
readonly PIDFILE="${STATE}/kafka.pid"
readonly LOGFILE="${STATE}/kafka.log"
readonly TLS_DIR="${STATE}/tls"
readonly KEYSTORE="${TLS_DIR}/broker.p12"
readonly CA_FILE="${TLS_DIR}/ca.pem"
readonly TRUSTSTORE="${TLS_DIR}/clients.p12"
readonly CLIENT_CERT="${TLS_DIR}/client.pem"
readonly CLIENT_KEY="${TLS_DIR}/client-key.pem"
# The keystore's password: the key and certificate of a loopback test
# broker, made on this machine, guard nothing.
readonly KEYSTORE_PASS=leadscore-test
readonly PROPS="${STATE}/server.properties"
readonly DATA="${STATE}/data"
readonly MIN_JAVA=17

JAVA=java
if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
  JAVA="${JAVA_HOME}/bin/java"
fi

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '4,/^# See deploy/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# check_port dies unless $2, the value of variable $1, is a TCP port number.
check_port() {
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a number, got '$2'"
  (($2 > 0 && $2 < 65536)) || die "$1 out of range: $2"
}

validate_env() {
  check_port KAFKA_PORT "${PORT}"
  check_port KAFKA_CONTROLLER_PORT "${CONTROLLER_PORT}"
  check_port KAFKA_SASL_PORT "${SASL_PORT}"
  check_port KAFKA_MTLS_PORT "${MTLS_PORT}"
  [[ "${START_TIMEOUT}" =~ ^[0-9]+$ ]] || die "KAFKA_START_TIMEOUT must be a number of seconds, got '${START_TIMEOUT}'"
  ((PORT != CONTROLLER_PORT)) || die "KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT (${PORT})"
  ((SASL_PORT != PORT && SASL_PORT != CONTROLLER_PORT)) ||
    die "KAFKA_SASL_PORT must differ from KAFKA_PORT and KAFKA_CONTROLLER_PORT (${SASL_PORT})"
  ((MTLS_PORT != PORT && MTLS_PORT != CONTROLLER_PORT && MTLS_PORT != SASL_PORT)) ||
    die "KAFKA_MTLS_PORT must differ from the other three ports (${MTLS_PORT})"
  [[ "${HEAP}" =~ ^[0-9]+[kKmMgG]?$ ]] || die "KAFKA_HEAP must look like 512m or 1g, got '${HEAP}'"
}

# java_major prints the major version of $JAVA (8 for 1.8.x, 17 for 17.0.x).
java_major() {
  local line ver
  line="$("${JAVA}" -version 2>&1 | head -n 1)" || return 1
  ver="$(sed -n 's/.*version "\([^"]*\)".*/\1/p' <<<"${line}")"
  [[ -n "${ver}" ]] || return 1
  if [[ "${ver}" == 1.* ]]; then
    ver="${ver#1.}"
  fi
  printf '%s\n' "${ver%%[.+-]*}"
}

check_java() {
  command -v "${JAVA}" >/dev/null 2>&1 || die "java not found: install a JDK ${MIN_JAVA}+ (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
  local major
  major="$(java_major)" || die "cannot read the version of ${JAVA}"
  ((major >= MIN_JAVA)) || die "Kafka 4 brokers need Java ${MIN_JAVA}+, ${JAVA} is Java ${major}; set JAVA_HOME to a newer JDK"
}

pom_hash() { sha256sum "${POM}" | cut -c1-16; }

# libs_dir prints the jar directory for the current pom, fetching it with
# Maven when it is not cached yet.
libs_dir() {
  local dir tmp
  dir="${KHOME}/libs-$(pom_hash)"
  if [[ -f "${dir}/.complete" ]]; then
    printf '%s\n' "${dir}"
    return
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven 3.6+ (apt-get install maven) to fetch the broker's jars"
  log "fetching Kafka jars with Maven into ${dir} (once per pom version)"
  tmp="$(mktemp -d "${KHOME}/libs-tmp.XXXXXX")"
  if ! mvn -q -B -f "${POM}" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="${tmp}" >"${tmp}.mvn.log" 2>&1; then
    tail -n 30 "${tmp}.mvn.log" >&2
    rm -rf "${tmp}" "${tmp}.mvn.log"
    die "maven could not fetch the broker's jars (see above)"
  fi
  rm -f "${tmp}.mvn.log"
  ls "${tmp}"/kafka_2.13-*.jar >/dev/null 2>&1 || die "maven output lacks kafka_2.13 jar in ${tmp}"
  touch "${tmp}/.complete"
  rm -rf "${dir}"
  mv "${tmp}" "${dir}"
  printf '%s\n' "${dir}"
}

# is_our_broker: pid is a live kafka.Kafka started with this state's config.
is_our_broker() {
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka ${PROPS}"
}

# running_pid prints the broker's pid when the pid file names a live broker
# of this state dir; removes a stale pid file. A broker of this state dir
# whose pid file was lost is adopted again.
running_pid() {
  local pid
  if [[ ! -f "${PIDFILE}" ]]; then
    pid="$(pgrep -f -- "kafka.Kafka ${PROPS}" 2>/dev/null | head -n 1)" || true
    if [[ -n "${pid}" ]] && is_our_broker "${pid}"; then
      log "adopting running broker pid ${pid} (its pid file was missing)"
      printf '%s\n' "${pid}" >"${PIDFILE}"
      printf '%s\n' "${pid}"
      return 0
    fi
    return 1
  fi
  pid="$(<"${PIDFILE}")"
  if is_our_broker "${pid}"; then
    printf '%s\n' "${pid}"
    return 0
  fi
  log "removing stale pid file (pid ${pid:-?} is not a running broker)"
  rm -f "${PIDFILE}"
  return 1
}

port_open() { (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null; }

who_listens() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3 >&2 || true
  fi
}

write_props() {
  mkdir -p "${STATE}" "${DATA}"
  # The mutual TLS listener, when make_tls could make a client certificate.
  local mtls_listener="" mtls_map="" mtls_conf=""
  if [[ -f "${TRUSTSTORE}" ]]; then
    mtls_listener=",MTLS://${HOST}:${MTLS_PORT}"
    mtls_map=",MTLS:SSL"
    mtls_conf="listener.name.mtls.ssl.client.auth=required
listener.name.mtls.ssl.truststore.type=PKCS12
listener.name.mtls.ssl.truststore.location=${TRUSTSTORE}
listener.name.mtls.ssl.truststore.password=${KEYSTORE_PASS}"
  fi
  cat >"${PROPS}.tmp" <<EOF
# Generated by deploy/kafka.sh on every 'up'; edit the script, not this file.
# Single-node KRaft, combined mode: this process is broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT},SASL_SSL://${HOST}:${SASL_PORT}${mtls_listener}
advertised.listeners=PLAINTEXT://${HOST}:${PORT},SASL_SSL://${HOST}:${SASL_PORT}${mtls_listener}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL${mtls_map}
log.dirs=${DATA}

# SASL_SSL, for the tests of clients' TLS and SASL settings: the
# certificate of ${KEYSTORE} (self-signed, for 127.0.0.1 and localhost;
# clients trust ${CA_FILE}); PLAIN with one user in the listener's JAAS
# entry; SCRAM users are kept by the controller and created through the
# Admin API (AlterUserScramCredentials) on the PLAINTEXT listener.
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_leadscore="leadscore-plain";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=${KEYSTORE}
ssl.keystore.password=${KEYSTORE_PASS}
ssl.key.password=${KEYSTORE_PASS}

# MTLS (SSL), for the tests of client certificates, when make_tls could
# make one: the same key and certificate; clients must present a
# certificate of the listener's truststore (${TRUSTSTORE}), which holds the
# one of ${CLIENT_CERT} (key ${CLIENT_KEY}).
${mtls_conf}

# One replica everywhere: there is one broker.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions than the default 50: faster first group/txn use.
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5

# Topics are created explicitly (tests and 'leadscore' create theirs).
auto.create.topics.enable=false
num.partitions=3
delete.topic.enable=true

# Groups: no 3 s wait before the first rebalance; allow short session
# timeouts so tests that kill a consumer see the rebalance quickly.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
group.consumer.min.session.timeout.ms=1000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000

# Transactions: a producer may ask for at most 5 min (default 15); ids and
# producer ids unused for 1 h are forgotten (default 7 days / 1 day); hung
# transactions are aborted within 10 s of their timeout.
transaction.max.timeout.ms=300000
transactional.id.expiration.ms=3600000
producer.id.expiration.ms=3600000
transaction.abort.timed.out.transaction.cleanup.interval.ms=10000

# Storage: 16 MiB segments (default 1 GiB) so retention and compaction act
# on test-sized data; keep 24 h; check retention every minute.
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=4
EOF
  mv "${PROPS}.tmp" "${PROPS}"
}

# make_tls makes, once, with the JDK's keytool, the key and self-signed
# certificate of the SASL_SSL and MTLS listeners, exporting the certificate
# as the CA file clients trust, and the MTLS listener's client certificate.
make_tls() {
  # keytool where java is: JAVA_HOME's (which set JAVA), beside the java on
  # PATH (links resolved), else on PATH.
  local keytool
  keytool="$(dirname "$(readlink -f "$(command -v "${JAVA}")")")/keytool"
  [[ -x "${keytool}" ]] || keytool="$(command -v keytool || true)"
  [[ -n "${keytool}" ]] || die "keytool not found (it comes with Java: JAVA_HOME/bin, next to java, or on PATH)"
  mkdir -p "${TLS_DIR}"
  chmod 700 "${TLS_DIR}"
  make_server_tls "${keytool}"
  make_client_tls "${keytool}"
}

# make_server_tls makes the broker's key and certificate (see make_tls).
make_server_tls() {
  [[ -f "${KEYSTORE}" && -f "${CA_FILE}" ]] && return 0
  local keytool="$1"
  rm -f "${KEYSTORE}" "${KEYSTORE}.tmp" "${CA_FILE}" "${CA_FILE}.tmp"
  log "making the SASL_SSL listener's certificate (${KEYSTORE})"
  "${keytool}" -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=localhost" -ext "SAN=ip:127.0.0.1,dns:localhost" -ext "EKU=serverAuth" \
    -storetype PKCS12 -keystore "${KEYSTORE}.tmp" -storepass "${KEYSTORE_PASS}" -keypass "${KEYSTORE_PASS}" \
    >>"${LOGFILE}" 2>&1 || die "keytool -genkeypair failed (see ${LOGFILE})"
  "${keytool}" -exportcert -rfc -alias broker -keystore "${KEYSTORE}.tmp" -storepass "${KEYSTORE_PASS}" \
    -file "${CA_FILE}.tmp" >>"${LOGFILE}" 2>&1 || die "keytool -exportcert failed (see ${LOGFILE})"
  mv "${CA_FILE}.tmp" "${CA_FILE}"
  mv "${KEYSTORE}.tmp" "${KEYSTORE}"
}

# make_client_tls makes, once, a client key and self-signed certificate
# for the MTLS listener and the broker's truststore holding it. keytool
# cannot export a private key: deploy/kafka/PemKey.java, run as a
# single-file program, writes it as PEM. That needs a JDK (the compiler
# module); with a JRE only, the broker runs without the MTLS listener.
make_client_tls() {
  [[ -f "${TRUSTSTORE}" && -f "${CLIENT_CERT}" && -f "${CLIENT_KEY}" ]] && return 0
  local keytool="$1" p12="${TLS_DIR}/client.p12"
  if ! "${JAVA}" --list-modules 2>/dev/null | grep -q '^jdk.compiler@'; then
    log "no JDK compiler module in ${JAVA} (a JRE?): starting without the MTLS listener"
    return 0
  fi
  rm -f "${TRUSTSTORE}" "${TRUSTSTORE}.tmp" "${CLIENT_CERT}" "${CLIENT_KEY}" "${CLIENT_KEY}.tmp" "${p12}"
  log "making a client certificate for the MTLS listener (${CLIENT_CERT})"
  if "${keytool}" -genkeypair -alias client -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=leadscore-test-client" -ext "EKU=clientAuth" \
    -storetype PKCS12 -keystore "${p12}" -storepass "${KEYSTORE_PASS}" -keypass "${KEYSTORE_PASS}" >>"${LOGFILE}" 2>&1 &&
    "${keytool}" -exportcert -rfc -alias client -keystore "${p12}" -storepass "${KEYSTORE_PASS}" \
      -file "${CLIENT_CERT}" >>"${LOGFILE}" 2>&1 &&
    (umask 077 && "${JAVA}" "${SCRIPT_DIR}/kafka/PemKey.java" "${p12}" "${KEYSTORE_PASS}" client "${CLIENT_KEY}.tmp") >>"${LOGFILE}" 2>&1 &&
    "${keytool}" -importcert -noprompt -alias client -file "${CLIENT_CERT}" \
      -storetype PKCS12 -keystore "${TRUSTSTORE}.tmp" -storepass "${KEYSTORE_PASS}" >>"${LOGFILE}" 2>&1; then
    mv "${CLIENT_KEY}.tmp" "${CLIENT_KEY}"
    mv "${TRUSTSTORE}.tmp" "${TRUSTSTORE}"
  else
    log "warning: no client certificate (see ${LOGFILE}); starting without the MTLS listener"
    rm -f "${TRUSTSTORE}.tmp" "${CLIENT_KEY}.tmp" "${CLIENT_CERT}"
  fi
  rm -f "${p12}"
}

# sasl_env prints the SASL_SSL listener and its CA file, when this port's
# broker was configured with them (a broker started by an older kafka.sh,
# still running, was not: it says so instead).
sasl_env() {
  if ! grep -q '^listeners=.*SASL_SSL://' "${PROPS}" 2>/dev/null || [[ ! -f "${CA_FILE}" ]]; then
    log "no SASL_SSL listener configured for port ${PORT} (a broker started by an older kafka.sh?); 'down' then 'up' adds it"
    return 0
  fi
  printf 'KAFKA_SASL_SSL_BROKERS=%s:%s\nKAFKA_TLS_CA_FILE=%s\n' "${HOST}" "${SASL_PORT}" "${CA_FILE}"
  if grep -q '^listeners=.*MTLS://' "${PROPS}" && [[ -f "${CLIENT_CERT}" && -f "${CLIENT_KEY}" ]]; then
    printf 'KAFKA_MTLS_BROKERS=%s:%s\nKAFKA_TLS_CLIENT_CERT=%s\nKAFKA_TLS_CLIENT_KEY=%s\n' \
      "${HOST}" "${MTLS_PORT}" "${CLIENT_CERT}" "${CLIENT_KEY}"
  else
    log "no MTLS listener configured for port ${PORT} (it needs a JDK; or the broker predates it: 'down' then 'up')"
  fi
}

format_storage() {
  local libs="$1" cluster_id
  [[ -f "${DATA}/meta.properties" ]] && return 0
  cluster_id="$("${JAVA}" -cp "${libs}/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
  [[ -n "${cluster_id}" ]] || die "kafka.tools.StorageTool random-uuid printed nothing"
  log "formatting ${DATA} (cluster id ${cluster_id})"
  if ! "${JAVA}" -Dlog4j2.configurationFile="${LOG4J_CONFIG}" -cp "${libs}/*" kafka.tools.StorageTool \
    format --config "${PROPS}" --cluster-id "${cluster_id}" --ignore-formatted >>"${LOGFILE}" 2>&1; then
    tail -n 20 "${LOGFILE}" >&2
    die "storage format failed"
  fi
}

# api_ready asks the broker for its API versions with Kafka's own tool.
api_ready() {
  timeout 30 "${JAVA}" -Xmx128m -Dlog4j2.configurationFile="${LOG4J_CONFIG}" -cp "$1/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "${HOST}:${PORT}" >/dev/null 2>&1
}

cmd_up() {
  local pid libs started deadline
  validate_env
  mkdir -p "${KHOME}"
  # Serialise concurrent 'up's (parallel test binaries) on this port.
  exec 9>"${KHOME}/broker-${PORT}.lock"
  flock -w 300 9 || die "timed out waiting for another kafka.sh on port ${PORT}"

  if pid="$(running_pid)"; then
    log "already up (pid ${pid})"
    printf 'KAFKA_BROKERS=%s:%s\n' "${HOST}" "${PORT}"
    sasl_env
    return 0
  fi
  check_java
  local p
  for p in "${PORT}" "${CONTROLLER_PORT}" "${SASL_PORT}" "${MTLS_PORT}"; do
    if port_open "${p}"; then
      who_listens "${p}"
      die "port ${HOST}:${p} is taken by another process; stop it or set KAFKA_PORT/KAFKA_CONTROLLER_PORT/KAFKA_SASL_PORT/KAFKA_MTLS_PORT"
    fi
  done
  libs="$(libs_dir)"
  mkdir -p "${STATE}"
  : >"${LOGFILE}"
  make_tls
  write_props
  format_storage "${libs}"

  log "starting broker on ${HOST}:${PORT} (controller ${HOST}:${CONTROLLER_PORT}, heap ${HEAP}, state ${STATE})"
  nohup "${JAVA}" -Xms256m -Xmx"${HEAP}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dkafka.logs.dir="${STATE}" \
    -Dlog4j2.configurationFile="${LOG4J_CONFIG}" \
    -cp "${libs}/*" kafka.Kafka "${PROPS}" </dev/null >>"${LOGFILE}" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "${pid}" >"${PIDFILE}"

  started=${SECONDS}
  deadline=$((started + START_TIMEOUT))
  while :; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      rm -f "${PIDFILE}"
      log "broker exited during start-up; last log lines:"
      tail -n 40 "${LOGFILE}" >&2
      exit 1
    fi
    # Cheap checks first (the start-up log line, or 20 s gone should another
    # Kafka version word it differently; then the open port), and only then
    # a JVM for the real probe.
    if { grep -qF 'Kafka Server started' "${LOGFILE}" || ((SECONDS - started > 20)); } &&
      port_open "${PORT}" && api_ready "${libs}"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      log "broker did not answer within ${START_TIMEOUT}s; last log lines:"
      tail -n 40 "${LOGFILE}" >&2
      stop_pid "${pid}"
      exit 1
    fi
    sleep 0.5
  done
  log "up (pid ${pid}); log: ${LOGFILE}"
  printf 'KAFKA_BROKERS=%s:%s\n' "${HOST}" "${PORT}"
  sasl_env
}

stop_pid() {
  local pid="$1" i
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "${pid}" 2>/dev/null; then
    log "broker did not stop within 30s; killing pid ${pid}"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  rm -f "${PIDFILE}"
}

cmd_down() {
  local pid
  validate_env
  if ! pid="$(running_pid)"; then
    log "not running"
    return 0
  fi
  log "stopping broker (pid ${pid})"
  stop_pid "${pid}"
  log "down"
}

cmd_status() {
  local pid
  validate_env
  if pid="$(running_pid 2>/dev/null)"; then
    printf 'up pid=%s KAFKA_BROKERS=%s:%s\n' "${pid}" "${HOST}" "${PORT}"
    return 0
  fi
  echo "down"
  return 3
}

cmd_logs() {
  [[ -f "${LOGFILE}" ]] || die "no log yet at ${LOGFILE}"
  if [[ "${1:-}" == "-f" ]]; then
    exec tail -n "${LINES:-100}" -F "${LOGFILE}"
  fi
  tail -n "${LINES:-100}" "${LOGFILE}"
}

cmd_clean() {
  cmd_down
  [[ -d "${STATE}" ]] && rm -rf "${STATE}"
  log "removed ${STATE}"
}

main() {
  (($# >= 1)) || usage
  local cmd="$1"
  shift
  case "${cmd}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  logs) cmd_logs "$@" ;;
  bootstrap) printf '%s:%s\n' "${HOST}" "${PORT}" ;;
  sasl-env) sasl_env ;;
  fetch) libs_dir >/dev/null ;;
  version) sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "${POM}" ;;
  clean) cmd_clean ;;
  -h | --help | help) usage ;;
  *)
    log "unknown command: ${cmd}"
    usage
    ;;
  esac
}

main "$@"

#!/usr/bin/env bash
# A pglease candidate in bash and psql: campaigns for a lease through the SQL functions of the pglease schema.
#
#   campaigner.sh --dsn "host=db dbname=app user=billing_app" --lease payments
#                 [--schema pglease] [--lease-duration 10s --renew-deadline 6s --retry-period 2s]
#                 [--work none|fenced-counter] [--work-interval 50ms] [--work-schema SCHEMA]
#                 [--holder-label LABEL] [--trace]
#
# Writes one JSON object per line to stdout, with the events and fields of `pglease node`: started, elected,
# revoked, released, write (with --work fenced-counter) and acquire, renew (with --trace). SIGTERM or SIGINT
# releases the lease and exits 0. Exit codes: 1 refused, 2 bad usage, 3 database unreachable at start, 4 schema
# missing or of another version. Warnings go to stderr.
#
# Every statement is one psql process (so each lease call is one auto-commit statement on a connection of its
# own), killed by `timeout` when the client stops waiting; statement_timeout and lock_timeout (PGOPTIONS) make the
# server give up first. A standby wakes at the expiry the database reported, capped by retryPeriod; it does not
# listen for notifications.
#
# The monotonic clock is /proc/uptime (Linux CLOCK_BOOTTIME: never steps, and counts a suspend of the machine) in
# steps of 10 ms; every "is the deadline still ahead" check adds those 10 ms, so the coarse clock can only make the
# campaigner stop earlier. $EPOCHREALTIME (the wall clock) is used for the reported times only.
#
# Needs bash 5, psql, coreutils `timeout`, and /proc/uptime.

set -u

SCHEMA_VERSION=1
CLOCK_STEP=10           # resolution of /proc/uptime, in ms
UNIT=$'\x1f'            # field separator of psql's output: a holder id can not contain a control character

fail_usage() {
    printf 'campaigner.sh: error: %s\n' "$1" >&2
    exit 2
}

warn() {
    printf 'campaigner.sh: %s\n' "$1" >&2
}

(( BASH_VERSINFO[0] >= 5 )) || { warn "needs bash 5 or later, this is $BASH_VERSION"; exit 2; }
[[ -r /proc/uptime ]] || { warn "needs /proc/uptime (Linux) as its monotonic clock"; exit 2; }

# MONO: milliseconds on the monotonic clock, rounded down to CLOCK_STEP.
mono() {
    local up _idle
    read -r up _idle < /proc/uptime
    MONO=$(( 10#${up/./} * 10 ))
}

# WALL: wall-clock epoch milliseconds, for the reported events only.
wall() {
    local us=${EPOCHREALTIME/[.,]/}
    WALL=$(( us / 1000 ))
}

random() {
    if [[ -n ${SRANDOM:-} ]]; then echo $(( SRANDOM % ($1 + 1) )); else echo $(( RANDOM % ($1 + 1) )); fi
}

# Milliseconds of a duration written 500ms, 2s, 1.5s, 1m or 1h (1 ms to 1 day), rounded up.
duration_ms() {
    local flag=$1 value=$2 ms
    ms=$(awk -v v="$value" 'BEGIN {
        if (v !~ /^[0-9]+(\.[0-9]+)?(ms|s|m|h)$/) { print "bad"; exit }
        unit = v; sub(/^[0-9.]+/, "", unit); n = v; sub(/(ms|s|m|h)$/, "", n)
        f = (unit == "ms") ? 1 : (unit == "s") ? 1000 : (unit == "m") ? 60000 : 3600000
        x = n * f; r = int(x); if (r < x) r++; print r }')
    [[ $ms == bad ]] && fail_usage "$flag '$value' is not a duration: use e.g. 500ms, 2s, 1.5s, 1m or 1h"
    (( ms >= 1 && ms <= 86400000 )) || fail_usage "$flag '$value' must be between 1ms and 1 day"
    echo "$ms"
}

printable() {
    # no control characters (the database refuses invisible and direction-changing ones too, naming the value)
    [[ -n $1 && $1 != *[[:cntrl:]]* ]]
}

# ---- settings ---------------------------------------------------------------------------------------------------

DSN=${PGLEASE_DSN:-}
LEASE=""
SCHEMA=pglease
LEASE_MS=10000
RENEW_DEADLINE_MS=6000
RETRY_MS=2000
WORK=none
WORK_INTERVAL_MS=50
WORK_SCHEMA=""
LABEL=""
TRACE=0

while (( $# > 0 )); do
    case $1 in
        --dsn|--lease|--schema|--lease-duration|--renew-deadline|--retry-period|--work|--work-interval|\
        --work-schema|--holder-label)
            (( $# >= 2 )) || fail_usage "$1 needs a value"
            case $1 in
                --dsn) DSN=$2 ;;
                --lease) LEASE=$2 ;;
                --schema) SCHEMA=$2 ;;
                --lease-duration) LEASE_MS=$(duration_ms "$1" "$2") || exit 2 ;;
                --renew-deadline) RENEW_DEADLINE_MS=$(duration_ms "$1" "$2") || exit 2 ;;
                --retry-period) RETRY_MS=$(duration_ms "$1" "$2") || exit 2 ;;
                --work) WORK=$2 ;;
                --work-interval) WORK_INTERVAL_MS=$(duration_ms "$1" "$2") || exit 2 ;;
                --work-schema) WORK_SCHEMA=$2 ;;
                --holder-label) LABEL=$2 ;;
            esac
            shift 2 ;;
        --trace) TRACE=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) fail_usage "unknown option '$1'" ;;
    esac
done

[[ -n $LEASE ]] || fail_usage "--lease is required"
{ printable "$LEASE" && (( ${#LEASE} <= 200 )); } \
    || fail_usage "--lease must be 1 to 200 characters without control characters, got '$LEASE'"
[[ -z $WORK_SCHEMA ]] && WORK_SCHEMA=$SCHEMA
for pair in "--schema:$SCHEMA" "--work-schema:$WORK_SCHEMA"; do
    value=${pair#*:}
    [[ $value =~ ^[a-z_][a-z0-9_]{0,47}$ && $value != pg_* ]] || fail_usage "${pair%%:*} '$value' is not allowed: use 1 \
to 48 characters a-z, 0-9 and _, starting with a letter or _, and not starting with pg_"
done
[[ $WORK == none || $WORK == fenced-counter ]] || fail_usage "--work must be fenced-counter or none, got '$WORK'"
if [[ -z $LABEL ]]; then
    APP_NAME=pglease-node
    LABEL=$(hostname 2>/dev/null || echo pglease)
    LABEL=${LABEL//[[:cntrl:]]/}
    LABEL=${LABEL:0:200}
    [[ -n $LABEL ]] || LABEL=pglease
else
    { printable "$LABEL" && (( ${#LABEL} <= 200 )); } || fail_usage "--holder-label must be 1 to 200 characters \
without control characters, got '$LABEL'"
    APP_NAME=pglease-node-${LABEL:0:50}
fi
(( RENEW_DEADLINE_MS * 10 <= LEASE_MS * 9 )) || fail_usage "--renew-deadline must be at most 90% of \
--lease-duration (the rest absorbs a difference of up to 10% between this machine's and the database's clock rates), \
got --lease-duration ${LEASE_MS}ms and --renew-deadline ${RENEW_DEADLINE_MS}ms (at most $(( LEASE_MS * 9 / 10 ))ms)"
(( RENEW_DEADLINE_MS * 10 > RETRY_MS * 12 )) || fail_usage "--renew-deadline must be greater than 1.2 x \
--retry-period, got --renew-deadline ${RENEW_DEADLINE_MS}ms and --retry-period ${RETRY_MS}ms (1.2 x --retry-period = \
$(( RETRY_MS * 12 / 10 ))ms)"

# The client waits for an answer at most NETWORK_MS; the server gives up on a statement after half of it.
NETWORK_MS=$(( RENEW_DEADLINE_MS + 100 ))
STATEMENT_MS=$(( NETWORK_MS / 2 ))
HOLDER=$(printf '%s/%d/%08x' "$LABEL" "$$" "$(random 4294967295)")
ERRFILE=$(mktemp "${TMPDIR:-/tmp}/campaigner.XXXXXX") || exit 1
SLEEP_PID=""
cleanup() {
    rm -f "$ERRFILE"
    [[ -n $SLEEP_PID ]] && kill "$SLEEP_PID" 2>/dev/null
}
trap cleanup EXIT

export PGOPTIONS="${PGOPTIONS:-} -c statement_timeout=$STATEMENT_MS -c lock_timeout=$STATEMENT_MS \
-c idle_in_transaction_session_timeout=$NETWORK_MS"
export PGCONNECT_TIMEOUT=$(( NETWORK_MS / 1000 > 2 ? (NETWORK_MS + 999) / 1000 : 2 ))
export PGAPPNAME=${PGAPPNAME:-$APP_NAME}

# ---- database access --------------------------------------------------------------------------------------------

# run_sql GIVE_UP_AT SQL: runs SQL (read by psql from stdin, so :'name' variables are quoted by psql) with the
# variables of this candidate; psql is killed at GIVE_UP_AT (monotonic ms). Sets OUT (the rows), RC (psql's exit
# status, 124 when killed) and SQLSTATE (of the error, if any) and ERROR (its first line).
run_sql() {
    local give_up=$1 sql=$2 left
    mono
    left=$(( give_up - MONO - CLOCK_STEP ))
    OUT="" SQLSTATE="" ERROR=""
    if (( left < 1 )); then
        RC=124 ERROR="no time left"
        return
    fi
    OUT=$(timeout -k 1 "$(( left / 1000 )).$(printf '%03d' $(( left % 1000 )))" \
          psql -X -q -A -t -F "$UNIT" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$DSN" \
               -v schema="$SCHEMA" -v work="$WORK_SCHEMA" -v lease="$LEASE" -v holder="$HOLDER" \
               -v token="${TOKEN:-0}" -v ttl="$LEASE_MS" -v max_ms="${MAX_MS:-1}" <<< "$sql" 2> "$ERRFILE")
    RC=$?
    if (( RC == 124 || RC == 137 )); then
        RC=124 ERROR="no answer in time"
    elif (( RC != 0 )); then
        ERROR=$(grep -m1 -E '^(ERROR|FATAL|psql):' "$ERRFILE" || head -n1 "$ERRFILE")
        [[ $ERROR =~ ^(ERROR|FATAL):\ +([0-9A-Z]{5}): ]] && SQLSTATE=${BASH_REMATCH[2]}
        ERROR=${ERROR//[[:cntrl:]]/ }
        [[ -n $ERROR ]] || ERROR="psql exited with status $RC"
    fi
}

LAST_ERROR=""
# lease_sql GIVE_UP_AT SQL: run_sql for a lease statement, reporting a new kind of error once on stderr.
lease_sql() {
    run_sql "$@"
    if (( RC != 0 )); then
        [[ $ERROR != "$LAST_ERROR" ]] && warn "lease statement failed (counted as not renewed / not granted): $ERROR"
        LAST_ERROR=$ERROR
    else
        LAST_ERROR=""
    fi
}

# ---- output -----------------------------------------------------------------------------------------------------

json() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//[[:cntrl:]]/ }
    printf '"%s"' "$s"
}

# emit EVENT [key value]...: values that are all digits are numbers, everything else a string
emit() {
    local line key value
    wall
    line="{\"event\":\"$1\",\"t\":$WALL"
    shift
    while (( $# >= 2 )); do
        key=$1 value=$2
        shift 2
        if [[ $value =~ ^-?[0-9]+$ ]]; then
            line+=",\"$key\":$value"
        else
            line+=",\"$key\":$(json "$value")"
        fi
    done
    # nobody may read the events any more: keep campaigning (a shutdown still releases), as the Java node does
    printf '%s}\n' "$line" 2> /dev/null
}

# ---- the candidate ----------------------------------------------------------------------------------------------

STOP=0
trap 'STOP=1' TERM INT
trap '' PIPE
LEADING=0
TOKEN=""
DEADLINE=0
NEXT_RENEW=0
NEXT_WRITE=0
NEXT_ATTEMPT=0
FAILURES=0

sleep_ms() {
    local ms=$1
    (( ms > 0 && ! STOP )) || return
    sleep "$(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))" < /dev/null > /dev/null 2>&1 &
    SLEEP_PID=$!
    wait "$SLEEP_PID"        # a signal ends the wait at once and runs the trap
    kill "$SLEEP_PID" 2>/dev/null
    wait "$SLEEP_PID" 2>/dev/null
    SLEEP_PID=""
}

trace() {   # trace EVENT RESULT TOKEN [SENT_WALL]
    (( TRACE )) || return
    if (( $# >= 4 )); then
        emit "$1" lease "$LEASE" holder "$HOLDER" result "$2" token "$3" sent "$4" deadline $(( $4 + RENEW_DEADLINE_MS ))
    else
        emit "$1" lease "$LEASE" holder "$HOLDER" result "$2" token "$3"
    fi
}

wall_deadline() {   # WALL_DEADLINE: the local deadline on the wall clock, rounded down to be safe
    mono; wall
    WALL_DEADLINE=$(( WALL + DEADLINE - MONO - CLOCK_STEP ))
}

error_backoff() {
    local shift=$(( FAILURES - 1 < 0 ? 0 : (FAILURES - 1 > 8 ? 8 : FAILURES - 1) ))
    local base=$(( (RETRY_MS / 2) << shift ))
    (( base > 2 * RETRY_MS )) && base=$(( 2 * RETRY_MS ))
    (( base < 1 )) && base=1
    echo $(( base + $(random $(( base / 5 ))) ))
}

start() {
    run_sql $(( MONO + NETWORK_MS )) "SELECT :\"schema\".schema_version(), has_function_privilege(
        quote_ident(:'schema') || '.acquire(text, text, bigint, text)', 'EXECUTE')"
    if (( RC != 0 )); then
        case $SQLSTATE in
            42883|3F000) warn "schema $SCHEMA is not a pglease schema (migrate it first): $ERROR"; exit 4 ;;
            42501) warn "this login may not use schema $SCHEMA (make it a member of the candidate role): $ERROR"
                   exit 1 ;;
            *) warn "can not reach the database: $ERROR"; exit 3 ;;
        esac
    fi
    local version=${OUT%%"$UNIT"*} may=${OUT##*"$UNIT"}
    if [[ $version != "$SCHEMA_VERSION" ]]; then
        warn "schema $SCHEMA is at version $version; this campaigner speaks version $SCHEMA_VERSION"
        exit 4
    fi
    [[ $may == t ]] || { warn "this login may not campaign in schema $SCHEMA: make it a member of the candidate role"
                         exit 1; }
    if [[ $WORK == fenced-counter ]]; then
        local table
        for table in fenced_counter fenced_counter_log; do
            mono
            run_sql $(( MONO + NETWORK_MS )) "SELECT to_regclass(quote_ident(:'work') || '.$table') IS NOT NULL,
                (SELECT p.lease FROM :\"schema\".protected_tables p
                  WHERE p.table_name = to_regclass(quote_ident(:'work') || '.$table'))"
            (( RC == 0 )) || { warn "can not check the work tables: $ERROR"; exit 3; }
            if [[ ${OUT%%"$UNIT"*} != t ]]; then
                warn "table $WORK_SCHEMA.$table does not exist: its owner creates it (see docs/any-language.md) and \
protects it with $SCHEMA.protect('$WORK_SCHEMA.$table', '$LEASE')"
                exit 4
            fi
            [[ ${OUT#*"$UNIT"} == "$LEASE" ]] || warn "table $WORK_SCHEMA.$table is not protected by lease $LEASE: the \
database will not refuse a stale write to it that skips the fence"
        done
    fi
    emit started lease "$LEASE" holder "$HOLDER" pid "$$"
}

lead() {   # lead TOKEN SENT_MONO
    LEADING=1 TOKEN=$1
    DEADLINE=$(( $2 + RENEW_DEADLINE_MS ))
    NEXT_RENEW=$(( $2 + RETRY_MS ))
    mono
    NEXT_WRITE=$MONO
    wall_deadline
    emit elected lease "$LEASE" holder "$HOLDER" token "$TOKEN" deadline "$WALL_DEADLINE"
}

step_down() {
    LEADING=0
    mono
    NEXT_ATTEMPT=$MONO
    emit revoked lease "$LEASE" holder "$HOLDER" token "$TOKEN" reason "$1"
}

give_back() {   # give_back WHY (TOKEN is the grant)
    warn "lease $LEASE token $TOKEN can not be used ($1); releasing it"
    mono
    lease_sql $(( MONO + NETWORK_MS )) "SELECT :\"schema\".release(:'lease', :'holder', :token)"
    mono
    NEXT_ATTEMPT=$MONO
}

campaign() {
    local sent sent_wall granted token holder wait_ms rest
    mono; wall
    sent=$MONO sent_wall=$WALL
    lease_sql $(( sent + NETWORK_MS )) "SELECT granted, token, coalesce(holder, ''), wait_ms
        FROM :\"schema\".acquire(:'lease', :'holder', :ttl)"
    mono
    if (( RC != 0 )); then
        # the outcome is unknown (a grant may have committed): look again at once, then back off
        FAILURES=$(( FAILURES + 1 ))
        NEXT_ATTEMPT=$(( MONO + (FAILURES == 1 ? 1 : $(error_backoff)) ))
        return
    fi
    FAILURES=0
    IFS=$UNIT read -r granted token rest <<< "$OUT"
    holder=${rest%"$UNIT"*} wait_ms=${rest##*"$UNIT"}
    trace acquire "$([[ $granted == t ]] && echo granted || echo denied)" "$token" "$sent_wall"
    if [[ $granted == t ]]; then
        TOKEN=$token
        if (( MONO + CLOCK_STEP >= sent + RENEW_DEADLINE_MS )); then
            give_back "the grant was answered after the renew deadline"
        else
            lead "$token" "$sent"
        fi
    elif [[ $holder == "$HOLDER" ]]; then
        # The database lists this process: a grant whose answer was lost, or one it stepped down from. Renew it
        # (the renewal's send time gives a deadline) or give it back.
        TOKEN=$token
        adopt
    else
        (( wait_ms > RETRY_MS )) && wait_ms=$RETRY_MS
        (( wait_ms < 1 )) && wait_ms=1
        local jitter_bound=$(( RETRY_MS / 10 < 10 ? RETRY_MS / 10 : 10 ))
        NEXT_ATTEMPT=$(( MONO + wait_ms + $(random "$jitter_bound") ))
    fi
}

adopt() {
    local sent sent_wall
    mono; wall
    sent=$MONO sent_wall=$WALL
    lease_sql $(( sent + NETWORK_MS )) "SELECT :\"schema\".renew(:'lease', :'holder', :token, :ttl)"
    mono
    if (( RC != 0 )); then
        trace renew error "$TOKEN"
        FAILURES=$(( FAILURES + 1 ))
        NEXT_ATTEMPT=$(( MONO + $(error_backoff) ))
    elif [[ $OUT != t ]]; then
        trace renew lost "$TOKEN"
        NEXT_ATTEMPT=$MONO
    elif (( MONO + CLOCK_STEP >= sent + RENEW_DEADLINE_MS )); then
        trace renew ok "$TOKEN" "$sent_wall"
        give_back "the renewal was answered after the renew deadline"
    else
        trace renew ok "$TOKEN" "$sent_wall"
        lead "$TOKEN" "$sent"
    fi
}

renew() {
    local sent sent_wall give_up backoff
    mono; wall
    sent=$MONO sent_wall=$WALL
    give_up=$(( sent + NETWORK_MS < DEADLINE ? sent + NETWORK_MS : DEADLINE ))
    lease_sql "$give_up" "SELECT :\"schema\".renew(:'lease', :'holder', :token, :ttl)"
    mono
    if (( RC != 0 )); then
        trace renew error "$TOKEN"
        FAILURES=$(( FAILURES + 1 ))
        backoff=$(( (RETRY_MS / 8) << (FAILURES - 1 > 4 ? 4 : FAILURES - 1) ))
        (( backoff > RETRY_MS / 2 )) && backoff=$(( RETRY_MS / 2 ))
        (( backoff < 1 )) && backoff=1
        NEXT_RENEW=$(( MONO + backoff < DEADLINE ? MONO + backoff : DEADLINE ))
        return
    fi
    FAILURES=0
    if [[ $OUT != t ]]; then
        trace renew lost "$TOKEN"
        step_down "the database no longer lists this holder with token $TOKEN"
    elif (( MONO + CLOCK_STEP >= DEADLINE )); then
        trace renew ok "$TOKEN" "$sent_wall"
        step_down "the renewal was answered after the renew deadline"
    else
        trace renew ok "$TOKEN" "$sent_wall"
        DEADLINE=$(( sent + RENEW_DEADLINE_MS ))
        NEXT_RENEW=$(( sent + RETRY_MS ))
    fi
}

# One fenced write: fence first, then the counter and its log, in one transaction that the server bounds by the
# remaining time (fence's third argument) and that the client abandons (killing psql) at the deadline.
write() {
    local start_wall result value reason
    mono
    (( MONO + CLOCK_STEP < DEADLINE )) || return
    wall
    start_wall=$WALL
    WALL_DEADLINE=$(( WALL + DEADLINE - MONO - CLOCK_STEP ))
    MAX_MS=$(( DEADLINE - MONO - CLOCK_STEP ))
    run_sql "$DEADLINE" "BEGIN;
        SELECT :\"schema\".fence(:'lease', :token, :max_ms);
        WITH c AS (INSERT INTO :\"work\".fenced_counter AS f (name, value, token) VALUES (:'lease', 1, :token)
                   ON CONFLICT (name) DO UPDATE SET value = f.value + 1, token = excluded.token RETURNING value)
        INSERT INTO :\"work\".fenced_counter_log (name, token, holder, value)
        SELECT :'lease', :token, :'holder', value FROM c RETURNING value;
        COMMIT;"
    if (( RC == 0 )); then
        value=${OUT##*$'\n'}
        emit write lease "$LEASE" holder "$HOLDER" token "$TOKEN" start "$start_wall" deadline "$WALL_DEADLINE" \
            result accepted value "$value"
    else
        result=error
        [[ $SQLSTATE == PL001 || $SQLSTATE == PL002 ]] && result=rejected
        reason=$ERROR
        [[ -n $SQLSTATE ]] && reason="$SQLSTATE: ${ERROR#*"$SQLSTATE": }"
        emit write lease "$LEASE" holder "$HOLDER" token "$TOKEN" start "$start_wall" deadline "$WALL_DEADLINE" \
            result "$result" reason "$reason"
    fi
}

shutdown() {
    if (( LEADING )); then
        LEADING=0
        emit released lease "$LEASE" holder "$HOLDER" token "$TOKEN" reason released
    fi
    if [[ -n $TOKEN ]]; then
        mono
        lease_sql $(( MONO + NETWORK_MS )) "SELECT :\"schema\".release(:'lease', :'holder', :token)"
        (( RC == 0 )) || warn "could not release lease $LEASE (it expires on its own): $ERROR"
    fi
}

mono
start
while (( ! STOP )); do
    mono
    if (( LEADING )); then
        if (( MONO + CLOCK_STEP >= DEADLINE )); then
            step_down "its renew deadline passed without a successful renewal"
        elif (( MONO >= NEXT_RENEW )); then
            renew
        elif [[ $WORK == fenced-counter ]] && (( MONO >= NEXT_WRITE )); then
            write
            mono
            NEXT_WRITE=$(( MONO + WORK_INTERVAL_MS ))
        else
            wake=$(( NEXT_RENEW < DEADLINE - CLOCK_STEP ? NEXT_RENEW : DEADLINE - CLOCK_STEP ))
            [[ $WORK == fenced-counter ]] && (( NEXT_WRITE < wake )) && wake=$NEXT_WRITE
            sleep_ms $(( wake - MONO ))
        fi
    elif (( MONO >= NEXT_ATTEMPT )); then
        campaign
    else
        sleep_ms $(( NEXT_ATTEMPT - MONO ))
    fi
done
shutdown
exit 0

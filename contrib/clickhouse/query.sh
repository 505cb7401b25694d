#!/usr/bin/env bash
# The CLI's list views over the fleet's events in ClickHouse (views/*.sql).
#
#   query.sh last-deploys [--app APP] [--classification V]
#   query.sh timeline APP [--category V] [--since T] [--until T]
#   query.sh recent [--app APP] [--category V] [--classification V] [--status V] [--actor A]
#                   [--action GLOB] [--since T] [--until T]
#   query.sh search --query TEXT [--app APP] [--category V] [--since T] [--until T]
#   query.sh releases APP [--since T]
# and with every view: [--host-id ID] (default: every host) [--limit N] (default as the CLI:
# 20, 50 for timeline) [--format F] (a ClickHouse output format, default JSONEachRow).
#
# Times: RFC 3339, a date (00:00Z), an age (90m, 36h, 7d; before DOKKU_AUDIT_NOW if set, else
# now), or anything GNU date -d reads. Search: words and "quoted phrases", all required (AND);
# other query syntax (OR, NOT, -word, field:value, wildcards, parentheses) is refused.
# Connection: CH_HOST, CH_PORT, CH_USER, CH_PASSWORD, CLICKHOUSE_CLIENT, as load.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
  echo " !     $*" >&2
  exit 1
}

# A string as a ClickHouse literal ('...' with \ and ' escaped).
lit() {
  local v=${1//\\/\\\\}
  printf "'%s'" "${v//\'/\\\'}"
}

# A time argument as epoch seconds.
epoch() {
  local t=$1 now n
  now=$(date -u -d "${DOKKU_AUDIT_NOW:-now}" +%s) || die "invalid DOKKU_AUDIT_NOW"
  if [[ $t =~ ^([0-9]+)([mhd])$ ]]; then
    n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
      m) echo $((now - n * 60)) ;;
      h) echo $((now - n * 3600)) ;;
      d) echo $((now - n * 86400)) ;;
    esac
    return
  fi
  date -u -d "$t" +%s 2>/dev/null || die "invalid time: $t"
}

# An --action glob (* and ?) as an anchored RE2 pattern: other ASCII punctuation is escaped.
glob_re() {
  jq -rn --arg g "$1" '"^" + ($g | gsub("(?<c>[!-/:-@\\[-`{-~])"; if .c == "*" then ".*"
    elif .c == "?" then "." else "\\" + .c end)) + "$"'
}

# The words and "quoted phrases" of a search query, as an SQL array of string literals.
phrases() {
  jq -rn --arg q "$1" --arg sq "'" '
    [$q | scan("\"[^\"]*\"|[^\\s\"]+|\"")] as $parts
    | if any($parts[]; . == "\"") then error("unclosed quote in the query") else . end
    | [$parts[] | select(. != "AND")
       | if startswith("\"") then .[1:-1]
         elif test("^[-+]|^(OR|NOT|IN)$|[:()\\[\\]{}^~*!\\\\]")
         then error("query syntax not supported here: \(.) (words and \"phrases\" only)")
         else . end]
    | if any(.[]; test("[\\p{L}\\p{N}]")) | not then error("nothing to search for") else . end
    | "[" + (map($sq + (gsub("\\\\"; "\\\\") | gsub($sq; "\\" + $sq)) + $sq) | join(", ")) + "]"
  ' 2>&1
}

[ $# -ge 1 ] || die "usage: query.sh last-deploys|timeline APP|recent|search|releases APP [options]"
view=$1
shift
declare -A p=([host_id]=NULL [app]=NULL [category]=NULL [classification]=NULL [status]=NULL
  [actor]=NULL [action_re]=NULL [since]=0 [until]=4294967295 [phrases]=NULL)
limit=20
format=JSONEachRow
case $view in
  last-deploys) allowed=" app classification " ;;
  timeline) allowed=" category since until " limit=50 ;;
  recent) allowed=" app category classification status actor action since until " ;;
  search) allowed=" app category since until query " ;;
  releases) allowed=" since " ;;
  *) die "unknown view: $view" ;;
esac
if [ "$view" = timeline ] || [ "$view" = releases ]; then
  if [ $# -eq 0 ] || [ -z "$1" ] || [[ $1 == --* ]]; then
    die "usage: query.sh $view APP [options]"
  fi
  p[app]=$(lit "$1")
  shift
fi
while [ $# -gt 0 ]; do
  opt=${1#--}
  [ $# -ge 2 ] || die "missing value for $1"
  val=$2
  shift 2
  case $opt in
    host-id) p[host_id]=$(lit "$val") ;;
    limit)
      [[ $val =~ ^[0-9]+$ ]] || die "--limit must be a positive integer"
      limit=$val
      ;;
    format)
      [[ $val =~ ^[A-Za-z]+$ ]] || die "invalid format: $val"
      format=$val
      ;;
    *)
      [[ $allowed == *" $opt "* ]] || die "unknown option for $view: --$opt"
      case $opt in
        since | until) p[$opt]=$(epoch "$val") ;;
        action) p[action_re]=$(lit "$(glob_re "$val")") ;;
        query)
          p[phrases]=$(phrases "$val") || die "${p[phrases]#jq: error (at <unknown>): }"
          ;;
        *) p[$opt]=$(lit "$val") ;;
      esac
      ;;
  esac
done
if [ "$view" = search ] && [ "${p[phrases]}" = NULL ]; then
  die "--query is required"
fi

p[limit]=$limit
# One pass over the template: a value is never searched for placeholders again.
rest=$(<"$here/views/$view.sql")
sql=""
while [[ $rest =~ \{([a-z_]+)\} ]]; do
  m=${BASH_REMATCH[0]}
  k=${BASH_REMATCH[1]}
  [ -n "${p[$k]+set}" ] || die "views/$view.sql: unknown parameter $m"
  sql+=${rest%%"$m"*}${p[$k]}
  rest=${rest#*"$m"}
done
sql+=$rest
client=${CLICKHOUSE_CLIENT:-clickhouse-client}
args=(--host "${CH_HOST:-localhost}" --port "${CH_PORT:-9000}" --user "${CH_USER:-default}")
if [ -n "${CH_PASSWORD:-}" ]; then
  args+=(--password "$CH_PASSWORD")
fi
exec "$client" "${args[@]}" --output_format_json_quote_64bit_integers=0 \
  --query "$sql FORMAT $format"

# One shipped segment line (raw text, jq -R) -> one row of dokku_audit.events (schema.sql), or
# nothing for a line that is not an event object (a torn last line after a crash, a blank line).
# $host_id, $host_name (jq --arg): the host of lines whose event has no meta.host_id /
# meta.host_name ('' when unknown).
# The integrity members a segment line ends with ("v", "chain", "crc") are dropped, except the
# chain value, kept in its own column.

# Meta keys left out of the CLI's full text (src/index/schema.rs, UNSEARCHED_META_KEYS).
def unsearched: {"actor_source": true, "success_hint": true, "subcommand": true,
  "triggered_by_subcommand": true, "container_type": true, "dokku_version": true,
  "hostname": true, "value_redacted": true};

# message, then the text of the meta values (in their order) except the unsearched keys and a
# top-level string equal to the message: as the CLI's index adds it, every string and number in
# the value, depth first (`..` visits an object's values and an array's items in order), each
# after a space; booleans and nulls add nothing.
def search_text:
  .message as $m
  | unsearched as $u
  | (.meta // {}) as $meta
  | $m + ([$meta | keys_unsorted[] | select($u[.] | not) | $meta[.] | select(. != $m)
           | .. | select(type == "string" or type == "number") | " " + tostring] | join(""));

# The code a deploy ran, as `releases` compares it for rollbacks (src/query/releases): an image
# deploy (source_type docker-image) is its source image (the image argument of git:from-image in
# the recorded command, else an image tag other than "latest"), anything else its revision.
def source_image:
  (.meta.triggered_by_subcommand // null) as $sub
  | if ($sub | type) != "string" then null
    else ((.meta.triggered_by_command // "") | if type == "string" then . else "" end
          | [splits("\\s+") | select(. != "")]) as $w
      | ($w | index([$sub])) as $i
      | if $sub != "git:from-image" or $i == null then null
        else [$w[$i + 1:][] | select(startswith("--") | not)][1] end
    end;
def code_key:
  (if .status == "success" and .source_type == "docker-image"
   then (source_image // (.image_tag | select(. != null and . != "latest")))
   else null end) as $img
  | if $img != null and $img != "" then "image:" + $img
    elif (.rev // "") != "" then "rev:" + .rev
    else "" end;

def str_or_empty: if type == "string" then . else "" end;

fromjson?
| select(type == "object" and (.id | type) == "number" and (.ts | type) == "string")
| {
    host_id: (.meta.host_id | str_or_empty | if . == "" then $host_id else . end),
    host_name: (.meta.host_name | str_or_empty | if . == "" then $host_name else . end),
    id, ts: (.ts | fromdateiso8601),
    app, category, action, status, classification, source_trigger, source_type, image_tag, rev,
    actor_type, actor_name, actor_label, correlation_id, message,
    meta: (.meta // {} | tojson),
    created_at: (.created_at | try fromdateiso8601 catch 0),
    release: (.meta.release | if type == "number" then . else null end),
    chain: (.chain | str_or_empty),
    code_key: code_key,
    search_text: search_text
  }

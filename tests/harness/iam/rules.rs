//! How the checker reads actions, resources (ARNs) and conditions.

use serde_yaml::Value;

use super::scope::as_text;

/// Words inside ARN resource parts that are syntax, not names (`autoScalingGroupName/*`).
pub(super) const ARN_KEYWORDS: &[&str] = &["autoscalinggroupname", "launchconfigurationname"];

/// `*` and `?` glob match, ASCII case-insensitive (IAM action names are).
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

pub(super) fn has_wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// [`spotswap_core::ops::is_read`]. A wildcard is read-only only as `Describe…*`.
pub fn is_read_only(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    let name = lower.split_once(':').map_or("", |(_, n)| n);
    if has_wildcard(name) {
        return name.starts_with("describe");
    }
    spotswap_core::ops::is_read(action)
}

/// Whether an allowed action pattern covers `target` (`ec2:TerminateInstances`, `ec2:Terminate*`).
pub(super) fn covers(action: &str, target: &str) -> bool {
    glob(action, target)
}

/// A parsed ARN.
pub(super) struct Arn {
    pub(super) service: String,
    pub(super) region: String,
    pub(super) rtype: String,
    /// The resource id is only wildcards: any resource of the type.
    pub(super) any_id: bool,
}

pub(super) fn parse_arn(s: &str) -> Option<Arn> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return None;
    }
    let resource = parts[5];
    let mut segments: Vec<&str> = resource.split(['/', ':']).collect();
    let rtype = if segments.len() > 1 {
        segments.remove(0).to_string()
    } else {
        String::new()
    };
    let names: Vec<&str> = segments
        .into_iter()
        .filter(|s| !ARN_KEYWORDS.contains(&s.to_ascii_lowercase().as_str()))
        .collect();
    let any_id =
        names.iter().any(|s| !s.is_empty()) && names.iter().all(|s| s.chars().all(|c| c == '*' || c == '?'));
    Some(Arn {
        service: parts[2].to_string(),
        region: parts[3].to_string(),
        rtype,
        any_id,
    })
}

/// `*`, a non-ARN, or an ARN naming any resource of its type. Template resources are specific.
pub fn is_wildcard_resource(s: &str) -> bool {
    if s.starts_with("REF.") || s.starts_with("GETATT.") {
        return false;
    }
    parse_arn(s).is_none_or(|a| a.any_id)
}

/// A condition as `(operator, key, values)`, keys lower-cased.
pub(super) fn condition_entries(cond: Option<&Value>) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (op, keys) in cond.and_then(Value::as_mapping).into_iter().flatten() {
        for (key, values) in keys.as_mapping().into_iter().flatten() {
            let values = match values {
                Value::Sequence(v) => v.iter().map(as_text).collect(),
                v => vec![as_text(v)],
            };
            out.push((as_text(op), as_text(key).to_ascii_lowercase(), values));
        }
    }
    out
}

/// A non-empty condition, every operator with at least one key.
pub(super) fn is_conditioned(cond: Option<&Value>) -> bool {
    match cond.and_then(Value::as_mapping) {
        Some(m) if !m.is_empty() => m
            .values()
            .all(|keys| keys.as_mapping().is_some_and(|k| !k.is_empty())),
        _ => false,
    }
}

/// The condition requires one of `tag_keys` (full condition keys, lower case) to be present.
pub(super) fn requires_tag(entries: &[(String, String, Vec<String>)], tag_keys: &[String]) -> bool {
    entries.iter().any(|(op, key, values)| {
        tag_keys.contains(key)
            && match op.as_str() {
                "Null" => values == &["false"],
                "StringEquals" | "StringLike" | "StringEqualsIgnoreCase" => !values.is_empty(),
                _ => false,
            }
    })
}

pub(super) fn tag_condition_keys(prefixes: &[&str], tags: &[&str]) -> Vec<String> {
    prefixes
        .iter()
        .flat_map(|p| tags.iter().map(move |t| format!("{p}{t}")))
        .collect()
}

/// `aws:TagKeys` limited (ForAllValues) to `spotswap:` keys, never `spotswap:enabled`.
pub(super) fn limits_tag_keys(entries: &[(String, String, Vec<String>)]) -> bool {
    // `spotswap:enabled` may be written only on groups AutoSpotting manages: that is
    // `spotswap migrate --apply` enrolling them, never a function enrolling groups itself.
    let autospotting = requires_autospotting_group(entries);
    entries.iter().any(|(op, key, values)| {
        key == "aws:tagkeys"
            && matches!(
                op.as_str(),
                "ForAllValues:StringEquals" | "ForAllValues:StringLike"
            )
            && !values.is_empty()
            && values
                .iter()
                .all(|v| v.starts_with("spotswap:") && (autospotting || !glob(v, "spotswap:enabled")))
    })
}

/// Auto Scaling under `Compat=autospotting`: only groups AutoSpotting's default filter selects,
/// `spot-enabled` = `true` (or, in its opt-out mode, != `false`).
pub(super) fn requires_autospotting_group(entries: &[(String, String, Vec<String>)]) -> bool {
    requires_group_tag(entries, "spot-enabled")
}

/// Auto Scaling: only groups that `spotswap:enabled` puts under management, or, under
/// `Compat=autospotting`, AutoSpotting's `spot-enabled`.
pub(super) fn requires_managed_group(entries: &[(String, String, Vec<String>)]) -> bool {
    requires_group_tag(entries, "spotswap:enabled") || requires_autospotting_group(entries)
}

fn requires_group_tag(entries: &[(String, String, Vec<String>)], tag: &str) -> bool {
    let keys = tag_condition_keys(&["autoscaling:resourcetag/", "aws:resourcetag/"], &[tag]);
    entries.iter().any(|(op, key, values)| {
        keys.contains(key)
            && match op.as_str() {
                "StringEquals" | "StringEqualsIgnoreCase" | "StringLike" => values == &["true"],
                // Opt-out mode: every group not tagged false. A missing tag satisfies a negated
                // operator, which is the point.
                "StringNotEquals" | "StringNotEqualsIgnoreCase" => values == &["false"],
                _ => false,
            }
    })
}

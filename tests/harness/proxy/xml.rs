//! Nested XML lists as the Query protocols write them (`<member>` in `<member>`), read and
//! rewritten without a parser: moto's answers are small and regular.

use super::upstream::tag_text;

/// The content of the first `<tag>…</tag>`.
pub(super) fn between<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    tag_text(xml, tag)
}

/// The contents of the top-level `<tag>…</tag>` children of `list`, nested ones kept inside.
pub(super) fn blocks<'a>(list: &'a str, tag: &str) -> Vec<&'a str> {
    spans(list, tag)
        .into_iter()
        .map(|(s, e)| &list[s + tag.len() + 2..e - tag.len() - 3])
        .collect()
}

/// `(start, end)` of each top-level `<tag>…</tag>` of `list`, tags included.
pub(super) fn spans(list: &str, tag: &str) -> Vec<(usize, usize)> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let (mut depth, mut at, mut begin) = (0usize, 0usize, 0usize);
    while at < list.len() {
        let rest = &list[at..];
        if rest.starts_with(&open) {
            if depth == 0 {
                begin = at;
            }
            depth += 1;
            at += open.len();
        } else if rest.starts_with(&close) {
            depth = depth.saturating_sub(1);
            at += close.len();
            if depth == 0 {
                out.push((begin, at));
            }
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// `xml` with each top-level `<item>` of its first `<list>` replaced by `f(content)`.
pub(super) fn map_blocks(xml: &str, list: &str, item: &str, mut f: impl FnMut(&str) -> String) -> String {
    let open = format!("<{list}>");
    let Some(s) = xml.find(&open) else {
        return xml.to_owned();
    };
    let start = s + open.len();
    // The list's own close is the one matching its open, not the first nested one.
    let Some(&(_, end)) = spans(&xml[s..], list).first() else {
        return xml.to_owned();
    };
    let end = s + end - list.len() - 3;
    let inner = &xml[start..end];
    let mut out = String::with_capacity(xml.len());
    out.push_str(&xml[..start]);
    let mut last = 0;
    for (bs, be) in spans(inner, item) {
        out.push_str(&inner[last..bs]);
        let body = &inner[bs + item.len() + 2..be - item.len() - 3];
        out.push_str(&format!("<{item}>{}</{item}>", f(body)));
        last = be;
    }
    out.push_str(&inner[last..]);
    out.push_str(&xml[end..]);
    out
}

/// `xml` with `extra` appended inside its first `<list>` (an empty `<list/>` opened up).
pub(super) fn append_to_list(xml: &str, list: &str, extra: &str) -> String {
    if extra.is_empty() {
        return xml.to_owned();
    }
    let empty = format!("<{list}/>");
    if let Some(at) = xml.find(&empty) {
        return format!(
            "{}<{list}>{extra}</{list}>{}",
            &xml[..at],
            &xml[at + empty.len()..]
        );
    }
    let open = format!("<{list}>");
    let Some(s) = xml.find(&open) else {
        return xml.to_owned();
    };
    match spans(&xml[s..], list).first() {
        Some(&(_, e)) => {
            let close_at = s + e - list.len() - 3;
            format!("{}{extra}{}", &xml[..close_at], &xml[close_at..])
        }
        None => xml.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::upstream::replace_tag_text;

    const GROUPS: &str = "<R><AutoScalingGroups><member><AutoScalingGroupName>g</AutoScalingGroupName>\
        <DesiredCapacity>2</DesiredCapacity><AvailabilityZones><member>a</member></AvailabilityZones>\
        <Instances><member><InstanceId>i-1</InstanceId><LifecycleState>InService</LifecycleState></member>\
        <member><InstanceId>i-2</InstanceId><LifecycleState>InService</LifecycleState></member></Instances>\
        </member><member><AutoScalingGroupName>h</AutoScalingGroupName><Instances/></member></AutoScalingGroups></R>";

    #[test]
    fn nested_members_stay_inside_their_group_and_instances_map_one_by_one() {
        let groups = blocks(between(GROUPS, "AutoScalingGroups").unwrap(), "member");
        assert_eq!(groups.len(), 2);
        let out = map_blocks(GROUPS, "AutoScalingGroups", "member", |g| {
            map_blocks(g, "Instances", "member", |m| {
                if m.contains("i-2") {
                    replace_tag_text(m, "LifecycleState", "Pending")
                } else {
                    m.to_owned()
                }
            })
        });
        assert!(
            out.contains("<InstanceId>i-2</InstanceId><LifecycleState>Pending</LifecycleState>"),
            "{out}"
        );
        assert!(out.contains("<InstanceId>i-1</InstanceId><LifecycleState>InService</LifecycleState>"));
        assert_eq!(out.len(), GROUPS.len() + "Pending".len() - "InService".len());
    }

    #[test]
    fn appending_opens_an_empty_list_and_goes_before_the_matching_close() {
        let h = append_to_list("<a><Instances/></a>", "Instances", "<member>x</member>");
        assert_eq!(h, "<a><Instances><member>x</member></Instances></a>");
        let g = append_to_list(
            "<Instances><member><Instances></Instances></member></Instances>",
            "Instances",
            "<member>y</member>",
        );
        assert_eq!(
            g,
            "<Instances><member><Instances></Instances></member><member>y</member></Instances>"
        );
    }
}

//! Batched launches: one CreateFleet for several originals of one group (issue 22).
//!
//! EC2's launch bucket refills at 2 calls a second, so one CreateFleet per swap caps a 5-minute
//! cycle near 600 swaps. A run of a group's launches that would send the same request apart
//! from the original ([`runs`]) goes out as one instant fleet of k instances ([`FleetBatch`]).
//!
//! CreateFleet tags every instance of a fleet alike, so a batch launch cannot carry its own
//! `spotswap:replaces` at launch. It carries `spotswap:batch`, the originals in order, and its
//! original is derived, the same way by every reader ([`pair`]): the batch's launches that are
//! not yet anchored, in instance-id order, take the originals not yet anchored, in list order.
//! The Attach stage anchors a pair: its one CreateTags writes `spotswap:replaces=<original>`
//! (with `replaced-by` and `attached-at`) on both instances, so from then on the pair no longer
//! depends on which of its siblings are still alive. The executor pairs CreateFleet's answer by
//! the same rule ([`assign`]), so its log lines name the launch every later cycle will derive.
//!
//! A fleet that launches j < k instances pairs the first j originals; the others have no launch
//! and are planned again by a later cycle, like a launch that failed. Nothing is orphaned: an
//! unpaired launch (more launches than originals, from a repeat that raced past the guard) has
//! no original, and the reaper ends it at its orphan age like any launch of ours outside a group.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{Action, ActionKind, LaunchSpec};
use crate::model::Instance;
use crate::tags;

/// Most originals in one batch: 12 instance ids of 19 characters, space-separated, are 239
/// characters, within a tag value's 256.
pub const MAX_BATCH: usize = 12;

/// Most instances one AttachInstances takes.
pub const MAX_ATTACH: usize = 20;

/// `spotswap:batch`'s value for `originals`.
pub fn value<S: AsRef<str>>(originals: &[S]) -> String {
    originals.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ")
}

/// The originals a `spotswap:batch` value names, in order; `None` when it is not 1 to
/// [`MAX_BATCH`] distinct instance ids (a tag written by hand): its launches then pair with
/// nothing, and the reaper ends them at their orphan age.
pub fn originals(value: &str) -> Option<Vec<&str>> {
    let ids: Vec<&str> = value.split_whitespace().collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    let ok = !ids.is_empty() && ids.len() <= MAX_BATCH && distinct.len() == ids.len();
    (ok && ids.iter().all(|i| is_instance_id(i))).then_some(ids)
}

fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-")
        .is_some_and(|hex| matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The pairing rule, once: `launches` (unanchored, any order) take `originals` (unanchored, in
/// list order) in instance-id order. Returns `(launch, original)` pairs.
fn zip_in_order<'a>(originals: &[&'a str], launches: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut sorted = launches.to_vec();
    sorted.sort_unstable();
    sorted.into_iter().zip(originals.iter().copied()).collect()
}

/// CreateFleet's answer paired: each original of the batch with the launch every reader will
/// derive for it, or `None` when the fleet launched fewer instances than it asked for.
pub fn assign<'a>(originals: &'a [String], launched: &'a [String]) -> Vec<(&'a str, Option<&'a str>)> {
    let origs: Vec<&str> = originals.iter().map(String::as_str).collect();
    let ids: Vec<&str> = launched.iter().map(String::as_str).collect();
    let pairs: BTreeMap<&str, &str> = zip_in_order(&origs, &ids)
        .into_iter()
        .map(|(l, o)| (o, l))
        .collect();
    origs.iter().map(|o| (*o, pairs.get(o).copied())).collect()
}

/// A batch launch and the original it is anchored to, if any.
type Member<'a> = (&'a str, Option<&'a str>);

/// Derive the original of every unanchored batch launch in `instances`, as the in-memory value
/// of its `spotswap:replaces` (never written to AWS by this). Pure and deterministic: any
/// reader holding all of a batch's launches (the region, our launches, or a look-up by
/// `spotswap:batch`) derives the same pairs. A launch dying (detached on interruption, or
/// stopped) keeps its original, so its siblings keep theirs; one terminated leaves every
/// reader's view at once, and its unanchored siblings may then pair with other originals of
/// the batch. That is safe: each original still has at most the launches paired with it, an
/// original left without one is planned again, and a launch paired with an original that is
/// gone is ended (`ReplacedInstanceGone`).
pub fn pair(instances: &mut BTreeMap<String, Instance>) {
    // (group, batch value) → (launch, its anchored original, if any)
    let mut batches: BTreeMap<(&str, &str), Vec<Member<'_>>> = BTreeMap::new();
    for i in instances.values() {
        let (Some(group), Some(batch)) = (i.launched_for(), i.tag(tags::BATCH)) else {
            continue;
        };
        batches
            .entry((group, batch))
            .or_default()
            .push((i.id.as_str(), i.replaces()));
    }
    let mut derived: Vec<(String, String)> = Vec::new();
    for ((_, batch), launches) in &batches {
        let Some(all) = originals(batch) else { continue };
        let anchored: BTreeSet<&str> = launches.iter().filter_map(|(_, o)| *o).collect();
        let free_originals: Vec<&str> = all.into_iter().filter(|o| !anchored.contains(o)).collect();
        let free_launches: Vec<&str> = launches
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|(l, _)| *l)
            .collect();
        for (l, o) in zip_in_order(&free_originals, &free_launches) {
            derived.push((l.to_string(), o.to_string()));
        }
    }
    for (launch, original) in derived {
        if let Some(i) = instances.get_mut(&launch) {
            i.tags.insert(tags::REPLACES.to_string(), original);
        }
    }
}

/// True when `a` and `b` would send the same CreateFleet apart from the original: same subnet,
/// template, candidates, purchase and tags (but `spotswap:replaces`).
fn same_request(a: &LaunchSpec, b: &LaunchSpec) -> bool {
    let shared = |s: &LaunchSpec| -> Vec<(String, String)> {
        s.tags
            .iter()
            .filter(|(k, _)| k != tags::REPLACES)
            .cloned()
            .collect()
    };
    a.subnet_id == b.subnet_id
        && a.launch_template == b.launch_template
        && a.candidates == b.candidates
        && a.purchase == b.purchase
        && shared(a) == shared(b)
}

fn spec_of(a: &Action) -> Option<&LaunchSpec> {
    match &a.kind {
        ActionKind::Launch(spec) => Some(spec),
        _ => None,
    }
}

/// The runs of `actions` (one group's plan, in order) that may share one call, as indices:
/// within a stretch of consecutive launches, those of one group sending the same request, at
/// most [`MAX_BATCH`] (one CreateFleet); within a stretch of consecutive attaches, those of
/// one group, at most [`MAX_ATTACH`] (one AttachInstances). Every action is in exactly one
/// run; runs come in the order of their first action, and nothing moves out of its stretch,
/// so every step the plan puts before a launch or an attach (a MaxSize raise) still runs
/// first. A run of one is an action on its own.
pub fn runs(actions: &[Action]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    while i < actions.len() {
        let attach = matches!(actions[i].kind, ActionKind::Attach { .. });
        let launch = spec_of(&actions[i]).is_some();
        if !attach && !launch {
            out.push(vec![i]);
            i += 1;
            continue;
        }
        let end = (i..actions.len())
            .find(|j| {
                let k = &actions[*j].kind;
                if attach {
                    !matches!(k, ActionKind::Attach { .. })
                } else {
                    !matches!(k, ActionKind::Launch(_))
                }
            })
            .unwrap_or(actions.len());
        let start = out.len();
        for j in i..end {
            let a = &actions[j];
            let open = out[start..].iter_mut().find(|run| {
                let first = &actions[run[0]];
                first.group == a.group
                    && if attach {
                        run.len() < MAX_ATTACH
                    } else {
                        run.len() < MAX_BATCH
                            && matches!((spec_of(first), spec_of(a)), (Some(x), Some(y)) if same_request(x, y))
                    }
            });
            match open {
                Some(run) => run.push(j),
                None => out.push(vec![j]),
            }
        }
        i = end;
    }
    out
}

/// One CreateFleet for several originals.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetBatch {
    /// The originals, in the order the launches pair with them.
    pub originals: Vec<String>,
    /// The request: the shared spec, `spotswap:batch` instead of `spotswap:replaces`, and a
    /// token of its own (a function of the whole request, as a single launch's).
    pub spec: LaunchSpec,
}

impl FleetBatch {
    /// The batch of `specs` (a run from [`runs`], at least one).
    pub fn of(specs: &[&LaunchSpec]) -> Option<Self> {
        let first = specs.first()?;
        let originals: Vec<String> = specs.iter().map(|s| s.replaces.clone()).collect();
        let list = value(&originals);
        let mut spec = (*first).clone();
        for (k, v) in &mut spec.tags {
            if k == tags::REPLACES {
                *k = tags::BATCH.to_string();
                v.clone_from(&list);
            }
        }
        spec.replaces = list;
        spec.client_token = crate::plan::launch::batch_token(&spec);
        Some(Self { originals, spec })
    }

    /// Instances asked for.
    pub fn count(&self) -> usize {
        self.originals.len()
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;

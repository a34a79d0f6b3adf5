//! What a `Launch` asks CreateFleet for.

use super::*;

#[test]
fn a_launch_uses_the_groups_template_and_the_originals_subnet() {
    // GIVEN one on-demand m5.large in its own subnet of us-east-1a
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .edit_instance("i-od1", |i| i.subnet_id = Some("subnet-0aaa1".into()))
        .desired(1);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    let specs = launches(&plan);
    assert_eq!(specs.len(), 1);
    let spec = specs[0];
    // THEN the group's own launch template and version go to CreateFleet untouched
    assert_eq!(spec.launch_template, template());
    // AND the replacement lands in the original's subnet
    assert_eq!(spec.subnet_id, "subnet-0aaa1");
    assert_eq!(spec.replaces, "i-od1");
    // AND the candidates are the compatible pools of its AZ, cheapest first
    assert_eq!(candidate_types(spec), M5_CANDIDATES.to_vec());
    assert!(spec.candidates.iter().all(|c| c.pool.az == A));
    assert!(spec
        .candidates
        .windows(2)
        .all(|w| w[0].spot_price <= w[1].spot_price));
    // AND the log line names the original, the cheapest pool and both prices
    let action = &plan.actions[0];
    assert_eq!(action.reason, Reason::OnDemandAboveFloor);
    assert_eq!(action.instance.as_deref(), Some("i-od1"));
    assert_eq!(action.pool, Some(Pool::new("m5a.large", A)));
    assert_eq!(action.spot_price, Some(0.035));
    assert_eq!(action.on_demand_price, Some(0.096));
}

#[test]
fn a_launch_carries_our_tags_and_the_propagated_ones() {
    // GIVEN a group whose propagate-at-launch tags include AWS's and our own keys
    let fleet = Fleet::new().on_demand("i-od1", A).desired(1).with_group(|g| {
        for (k, v) in [
            ("Name", "web"),
            ("team", "sre"),
            ("aws:cloudformation:stack-name", "web-stack"),
            ("spotswap:enabled", "true"),
        ] {
            g.propagated_tags.insert(k.into(), v.into());
        }
    });
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the launch carries our four tags, then the group's own, and no aws:/spotswap: copy
    let tags: Vec<(&str, &str)> = launches(&plan)[0]
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        vec![
            (tags::GROUP, GROUP),
            (tags::REPLACES, "i-od1"),
            (tags::REPLACES_TYPE, "m5.large"),
            (tags::LAUNCHED_AT, "2026-01-01T12:00:00Z"),
            ("Name", "web"),
            ("team", "sre"),
        ]
    );
}

#[test]
fn the_client_token_is_a_function_of_the_whole_request() {
    // GIVEN the same one-instance group planned at several times
    let spec_at = |now: Timestamp, id: &str| {
        let plan = Fleet::new().on_demand(id, A).desired(1).at(now).plan();
        launches(&plan)[0].clone()
    };
    let first = spec_at(NOW, "i-od1");
    // THEN the same request gets the same token (an SDK retry, a cycle repeated in the same
    // second: EC2 answers it with the first fleet)
    assert_eq!(spec_at(NOW, "i-od1").client_token, first.client_token);
    // AND a request that differs in anything gets another one: reusing a token with other
    // parameters is EC2's IdempotentParameterMismatch (here `spotswap:launched-at` a second
    // later, another instance, another set of pools)
    let later = spec_at(NOW.plus_secs(1), "i-od1");
    assert_ne!(later.tags, first.tags);
    assert_ne!(later.client_token, first.client_token);
    assert_ne!(spec_at(NOW, "i-od2").client_token, first.client_token);
    let mut fewer = first.clone();
    fewer.candidates.pop();
    assert_ne!(client_token(&fewer), first.client_token);
    // AND it is the documented function, short enough for CreateFleet (64)
    assert_eq!(first.client_token, client_token(&first));
    assert!(first.client_token.len() <= 64 && first.client_token.is_ascii());
}

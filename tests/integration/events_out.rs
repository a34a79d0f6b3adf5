//! Our own events reach EventBridge: a rule with an SQS target (moto delivers to SQS) receives
//! the workflow's own `Spotswap Swap Completed` when a swap runs to completion, and every
//! event, batched 10 to a PutEvents call; a missing bus never fails the caller and delivers
//! nothing. The events as delivered are a source of `spotswap explain`.

use spotswap_aws::explain::{explain, ExplainRequest};
use spotswap_aws::report::{publish, Notification, FALLBACK, SWAP_COMPLETED};
use spotswap_aws::{rebalance, Config, CycleOptions};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};

/// An SQS queue that a rule on the default bus fills with every event of source `spotswap`.
async fn routed_queue(env: &Env, name: &str) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&env.conf);
    let events = aws_sdk_eventbridge::Client::new(&env.conf);
    let q = sqs.create_queue().queue_name(name).send().await.unwrap();
    let url = q.queue_url().unwrap().to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name(format!("{name}-rule"))
        .event_pattern(r#"{"source":["spotswap"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(format!("{name}-rule"))
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(&arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (sqs, url)
}

/// Every message on the queue, as JSON, until `want` have arrived or it is empty.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, want: usize) -> Vec<serde_json::Value> {
    let mut got = Vec::new();
    for _ in 0..10 {
        let r = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if r.messages().is_empty() {
            break;
        }
        for m in r.messages() {
            got.push(serde_json::from_str::<serde_json::Value>(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if got.len() >= want {
            break;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_run_to_completion_announces_itself_on_the_bus() {
    // GIVEN a managed group of one on-demand instance, and a queue routed from the bus
    let env = Env::new().await;
    let (sqs, url) = routed_queue(&env, "spotswap-swaps").await;
    let group = env.group(&GroupSpec::managed("events-swap", 1)).await;
    let original = env.group_state(&group).await.in_service()[0].clone();
    let config = Config {
        price_file: Some(sample_price_file()),
        event_bus: "default".into(),
        ..Config::default()
    };

    // WHEN rebalancer cycles run until the swap settles
    let mut quiet = false;
    for _ in 0..8 {
        let cycle = rebalance(&env.aws(), &config, CycleOptions::default())
            .await
            .expect("cycle");
        if cycle.mutating_calls() == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "the swap settles");
    let g = env.group_state(&group).await;
    assert!(!g.members.contains_key(&original), "{:?}", g.members);
    let replacement = g.in_service()[0].clone();

    // THEN the workflow's own `Spotswap Swap Completed` is on the queue, once, naming the
    // group, the retired instance and its replacement
    let got = drain(&sqs, &url, 10).await;
    assert!(got.iter().all(|e| e["source"] == "spotswap"), "{got:#?}");
    let done: Vec<&serde_json::Value> = got
        .iter()
        .filter(|e| e["detail-type"] == SWAP_COMPLETED)
        .collect();
    assert_eq!(done.len(), 1, "{got:#?}");
    let detail = &done[0]["detail"];
    assert_eq!(detail["group"], group.as_str());
    let instances: Vec<&str> = detail["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        instances.contains(&original.as_str()) && instances.contains(&replacement.as_str()),
        "{detail}"
    );
    // and it carries the cycle's id, so it joins that cycle's decision lines
    let cycle_id = detail["cycle_id"].as_str().unwrap_or_default();
    assert!(cycle_id.starts_with("c-"), "{detail}");

    // WHEN the events, as delivered, are handed to `explain` (an archive the user wrote)
    let archive: Vec<String> = got.iter().map(|e| e.to_string()).collect();
    let now = spotswap_aws::workflow::now();
    let req = ExplainRequest {
        subject: replacement.clone(),
        log_groups: Vec::new(),
        stacks: Vec::new(),
        log_files: vec![("events.jsonl".into(), archive.join("\n"))],
        since: now.plus_secs(-3600),
        now,
    };
    let e = explain(&env.aws(), &config, &req).await.expect("explain");
    // THEN the completed swap is in the replacement's timeline as an event, with its cycle id
    let v = serde_json::to_value(&e).expect("JSON");
    let entries = v["timeline"].as_array().expect("timeline");
    assert!(
        entries.iter().any(|t| t["source"] == "event"
            && t["what"].as_str().is_some_and(|w| w.contains(SWAP_COMPLETED))
            && t["cycle_id"] == cycle_id),
        "{v:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_in_batches_to_a_routed_queue() {
    // GIVEN an SQS queue and a rule routing source "spotswap" to it
    let env = Env::new().await;
    let (sqs, url) = routed_queue(&env, "spotswap-events").await;
    let events = aws_sdk_eventbridge::Client::new(&env.conf);

    // WHEN 12 events are published (a completed swap and 11 fallbacks)
    let aws = env.aws();
    let mut notes = vec![Notification {
        detail_type: SWAP_COMPLETED,
        detail: serde_json::json!({"group": "web", "instances": ["i-old", "i-new"], "pools": ["m5.large/us-east-1a"],
            "reason": "ReplacementInService", "spot_price": 0.04, "on_demand_price": 0.096}),
    }];
    for n in 0..11 {
        notes.push(Notification {
            detail_type: FALLBACK,
            detail: serde_json::json!({"group": "web", "instances": [format!("i-{n}")], "pools": [], "reason": "NoSpotCapacity",
                "spot_price": null, "on_demand_price": 0.096}),
        });
    }
    publish(&aws, "default", &notes).await;

    // THEN two PutEvents calls carried them, and all 12 arrive with source, type and detail
    assert_eq!(aws.api_calls().get("eventbridge:PutEvents"), Some(&2));
    let got = drain(&sqs, &url, 12).await;
    assert_eq!(got.len(), 12);
    assert!(got.iter().all(|e| e["source"] == "spotswap"));
    let done = got
        .iter()
        .find(|e| e["detail-type"] == SWAP_COMPLETED)
        .expect("swap completed event");
    assert_eq!(done["detail"]["instances"], serde_json::json!(["i-old", "i-new"]));
    assert_eq!(got.iter().filter(|e| e["detail-type"] == FALLBACK).count(), 11);

    // AND a bus that does not exist refuses a PutEvents (so the next step meets a failure)
    let refused = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("spotswap")
                .detail_type(FALLBACK)
                .detail("{}")
                .event_bus_name("no-such-bus")
                .build(),
        )
        .send()
        .await;
    assert!(
        match &refused {
            Err(_) => true,
            Ok(r) => r.failed_entry_count() > 0,
        },
        "{refused:?}"
    );
    // WHEN an event is published to that bus
    aws.reset_api_calls();
    publish(&aws, "no-such-bus", &notes[..1]).await;
    // THEN it is tried once, the caller goes on (best-effort: publish returns nothing to fail
    //   with), and nothing reaches the rule on the default bus
    assert_eq!(aws.api_calls().get("eventbridge:PutEvents"), Some(&1));
    let stray = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(stray.messages().is_empty(), "{:?}", stray.messages());
}

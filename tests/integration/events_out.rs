//! Our own events reach EventBridge: a rule with an SQS target (moto delivers to SQS) receives
//! every event, batched 10 to a PutEvents call; a missing bus never fails the caller and
//! delivers nothing.

use spotswap_aws::report::{publish, Notification, FALLBACK, SWAP_COMPLETED};
use spotswap_tests::fleet::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_in_batches_to_a_routed_queue() {
    // GIVEN an SQS queue and a rule routing source "spotswap" to it
    let env = Env::new().await;
    let sqs = aws_sdk_sqs::Client::new(&env.conf);
    let events = aws_sdk_eventbridge::Client::new(&env.conf);
    let q = sqs
        .create_queue()
        .queue_name("spotswap-events")
        .send()
        .await
        .unwrap();
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
        .name("spotswap-to-sqs")
        .event_pattern(r#"{"source":["spotswap"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("spotswap-to-sqs")
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
    let mut got = Vec::new();
    for _ in 0..10 {
        let r = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in r.messages() {
            got.push(serde_json::from_str::<serde_json::Value>(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if got.len() >= 12 {
            break;
        }
    }
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

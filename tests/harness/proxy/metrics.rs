//! CloudWatch `GetMetricData` as AWS serves it, which moto cannot: the SDK speaks the
//! `rpcv2Cbor` protocol to CloudWatch (`POST /service/GraniteServiceVersion20100801/operation/
//! GetMetricData`, a CBOR body), and moto 5.2 parses CloudWatch requests as Query forms only.
//!
//! The proxy keeps the datapoints a test puts ([`super::Proxy::put_metric`]), as CloudWatch
//! would have them from the Lambda's EMF lines, and answers each query as CloudWatch does:
//! the datapoints of the named namespace, metric and dimensions between `StartTime` and
//! `EndTime`, aggregated per `Period` from `StartTime` (`Average`, `Sum`, `Minimum`,
//! `Maximum`, `SampleCount`), newest first, `StatusCode` `Complete`; every query's results
//! across pages of [`super::Proxy::set_metric_page_size`] datapoints, with a `NextToken`.

use ciborium::value::Value;
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::call::Call;
use super::{Reply, State};

/// One datapoint as CloudWatch stores it.
#[derive(Clone, Debug)]
pub(super) struct Datapoint {
    pub(super) region: String,
    pub(super) namespace: String,
    pub(super) metric: String,
    /// `(name, value)`, sorted by name.
    pub(super) dimensions: Vec<(String, String)>,
    /// Epoch seconds.
    pub(super) at: i64,
    pub(super) value: f64,
}

/// The metric store and its paging.
#[derive(Clone, Debug, Default)]
pub(super) struct Store {
    pub(super) points: Vec<Datapoint>,
    /// Datapoints per page; `None`: CloudWatch's 100,800.
    pub(super) page_size: Option<usize>,
}

pub(super) fn handles(call: &Call) -> bool {
    call.service == "monitoring" && call.operation == "GetMetricData"
}

fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn text(v: Option<&Value>) -> Option<String> {
    v?.as_text().map(str::to_string)
}

/// A CBOR timestamp (tag 1 over seconds, integer or float) or a bare number, as seconds.
fn seconds(v: Option<&Value>) -> Option<i64> {
    let v = match v? {
        Value::Tag(1, inner) => inner.as_ref(),
        other => other,
    };
    match v {
        Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        Value::Float(f) => Some(f.floor() as i64),
        _ => None,
    }
}

/// One query: its id and the series it asks for.
struct Query {
    id: String,
    namespace: String,
    metric: String,
    dimensions: Vec<(String, String)>,
    period: i64,
    stat: String,
}

fn query(q: &Value) -> Result<Query, String> {
    let id = text(get(q, "Id")).ok_or("a query without Id")?;
    let stat = get(q, "MetricStat").ok_or("only MetricStat queries are modelled")?;
    let metric = get(stat, "Metric").ok_or("MetricStat without Metric")?;
    let mut dimensions: Vec<(String, String)> = get(metric, "Dimensions")
        .and_then(Value::as_array)
        .map(|ds| {
            ds.iter()
                .filter_map(|d| Some((text(get(d, "Name"))?, text(get(d, "Value"))?)))
                .collect()
        })
        .unwrap_or_default();
    dimensions.sort();
    Ok(Query {
        id,
        namespace: text(get(metric, "Namespace")).unwrap_or_default(),
        metric: text(get(metric, "MetricName")).unwrap_or_default(),
        dimensions,
        period: seconds(get(stat, "Period"))
            .filter(|p| *p > 0)
            .ok_or("MetricStat without Period")?,
        stat: text(get(stat, "Stat")).ok_or("MetricStat without Stat")?,
    })
}

fn aggregate(stat: &str, values: &[f64]) -> Option<f64> {
    let n = values.len() as f64;
    match stat {
        "Average" => Some(values.iter().sum::<f64>() / n),
        "Sum" => Some(values.iter().sum()),
        "Minimum" => values.iter().copied().reduce(f64::min),
        "Maximum" => values.iter().copied().reduce(f64::max),
        "SampleCount" => Some(n),
        _ => None,
    }
}

/// One query's answer: its id and `(period start, value)`s, newest first.
type Series = (String, Vec<(i64, f64)>);

/// Each query's [`Series`].
fn results(
    store: &Store,
    region: &str,
    queries: &[Query],
    start: i64,
    end: i64,
) -> Result<Vec<Series>, String> {
    queries
        .iter()
        .map(|q| {
            let mut buckets: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
            for p in store.points.iter().filter(|p| {
                p.region == region
                    && p.namespace == q.namespace
                    && p.metric == q.metric
                    && p.dimensions == q.dimensions
                    && p.at >= start
                    && p.at < end
            }) {
                let bucket = start + (p.at - start) / q.period * q.period;
                buckets.entry(bucket).or_default().push(p.value);
            }
            let mut series = Vec::new();
            for (at, values) in buckets.into_iter().rev() {
                let v = aggregate(&q.stat, &values).ok_or_else(|| format!("unsupported Stat {}", q.stat))?;
                series.push((at, v));
            }
            Ok((q.id.clone(), series))
        })
        .collect()
}

fn cbor(status: StatusCode, value: &Value) -> Reply {
    let mut body = Vec::new();
    if let Err(e) = ciborium::ser::into_writer(value, &mut body) {
        return super::upstream::bad_gateway(format!("encoding CBOR: {e}"));
    }
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/cbor"));
    headers.insert(
        HeaderName::from_static("smithy-protocol"),
        HeaderValue::from_static("rpc-v2-cbor"),
    );
    response
}

/// An rpcv2Cbor error: a CBOR map with `__type` and `message`, as the SDK reads it.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let value = Value::Map(vec![
        (Value::Text("__type".into()), Value::Text(code.into())),
        (Value::Text("message".into()), Value::Text(message.into())),
    ]);
    cbor(status, &value)
}

fn text_value(s: &str) -> Value {
    Value::Text(s.to_string())
}

pub(super) fn answer(state: &State, call: &Call, body: &Bytes) -> Reply {
    let invalid = |m: String| error(StatusCode::BAD_REQUEST, "InvalidParameterValue", &m);
    let request: Value = match ciborium::de::from_reader(&body[..]) {
        Ok(v) => v,
        Err(e) => return invalid(format!("the request is not CBOR: {e}")),
    };
    let queries: Result<Vec<Query>, String> = get(&request, "MetricDataQueries")
        .and_then(Value::as_array)
        .map(|qs| qs.iter().map(query).collect())
        .unwrap_or_else(|| Err("MetricDataQueries is required".into()));
    let queries = match queries {
        Ok(q) if q.len() <= 500 => q,
        Ok(_) => return invalid("at most 500 MetricDataQueries".into()),
        Err(e) => return invalid(e),
    };
    let (Some(start), Some(end)) = (
        seconds(get(&request, "StartTime")),
        seconds(get(&request, "EndTime")),
    ) else {
        return invalid("StartTime and EndTime are required".into());
    };
    let skip: usize = text(get(&request, "NextToken"))
        .and_then(|t| t.strip_prefix("proxy-").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let store = state.scenario().metrics.clone();
    let all = match results(&store, &call.region, &queries, start, end) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    // Pages cut the datapoints of all queries, in query order, `page_size` at a time.
    let page_size = store.page_size.unwrap_or(100_800).max(1);
    let mut seen = 0usize;
    let mut out = Vec::new();
    for (id, series) in &all {
        let mine: Vec<&(i64, f64)> = series
            .iter()
            .enumerate()
            .filter(|(n, _)| (seen + n) >= skip && (seen + n) < skip + page_size)
            .map(|(_, p)| p)
            .collect();
        seen += series.len();
        out.push(Value::Map(vec![
            (text_value("Id"), text_value(id)),
            (text_value("Label"), text_value("EstimatedHourlySavings")),
            (
                text_value("Timestamps"),
                Value::Array(
                    mine.iter()
                        .map(|(t, _)| Value::Tag(1, Box::new(Value::Float(*t as f64))))
                        .collect(),
                ),
            ),
            (
                text_value("Values"),
                Value::Array(mine.iter().map(|(_, v)| Value::Float(*v)).collect()),
            ),
            (text_value("StatusCode"), text_value("Complete")),
        ]));
    }
    let mut response = vec![
        (text_value("MetricDataResults"), Value::Array(out)),
        (text_value("Messages"), Value::Array(Vec::new())),
    ];
    if skip + page_size < seen {
        response.push((
            text_value("NextToken"),
            text_value(&format!("proxy-{}", skip + page_size)),
        ));
    }
    cbor(StatusCode::OK, &Value::Map(response))
}

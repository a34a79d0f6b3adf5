//! On-demand prices: the AWS Price List API, else `SPOTSWAP_PRICE_FILE`, else none (and then
//! only same-type replacements are allowed). A missing price never fails a cycle.

use std::collections::BTreeMap;

use spotswap_core::PriceSource;
use tracing::{info, warn};

use crate::cache::{Cached, Prices, PRICES_RETRY, PRICES_TTL};
use crate::port::op;
use crate::{AdapterError, Aws};

/// The products of a region's on-demand Linux prices, besides `regionCode`.
const PRICE_FILTERS: [(&str, &str); 5] = [
    ("operatingSystem", "Linux"),
    ("tenancy", "Shared"),
    ("preInstalledSw", "NA"),
    ("capacitystatus", "Used"),
    ("licenseModel", "No License required"),
];

/// On-demand prices for the region, cached per container.
pub(crate) async fn on_demand_prices(aws: &Aws, price_file: Option<&str>) -> Prices {
    let mut slot = aws.cache.prices.lock().await;
    if let Some(c) = slot.as_ref() {
        let ttl = if c.value.source == PriceSource::PriceListApi {
            PRICES_TTL
        } else {
            PRICES_RETRY
        };
        if c.fresh(ttl) {
            return c.value.clone();
        }
    }
    let prices = match from_price_list(aws).await {
        Ok(by_type) if !by_type.is_empty() => Prices {
            by_type,
            source: PriceSource::PriceListApi,
        },
        result => {
            let why = match result {
                Err(e) => e.to_string(),
                Ok(_) => "no products returned".to_string(),
            };
            match price_file.map(|p| (p, from_file(p, aws.region()))) {
                Some((_, Ok(by_type))) => {
                    warn!(reason = "PriceListUnavailable", error = %why, source = "price-file", "on-demand prices from SPOTSWAP_PRICE_FILE");
                    Prices {
                        by_type,
                        source: PriceSource::PriceFile,
                    }
                }
                Some((_, Err(e))) => {
                    warn!(reason = "PriceFileUnreadable", error = %e, price_list_error = %why, source = "none", "no on-demand prices: only same-type replacements");
                    Prices {
                        by_type: BTreeMap::new(),
                        source: PriceSource::None,
                    }
                }
                None => {
                    warn!(reason = "PriceListUnavailable", error = %why, source = "none", "no on-demand prices: only same-type replacements");
                    Prices {
                        by_type: BTreeMap::new(),
                        source: PriceSource::None,
                    }
                }
            }
        }
    };
    info!(source = ?prices.source, types = prices.by_type.len(), "on-demand prices loaded");
    *slot = Some(Cached {
        at: std::time::Instant::now(),
        value: prices.clone(),
    });
    prices
}

async fn from_price_list(aws: &Aws) -> Result<BTreeMap<String, f64>, AdapterError> {
    let mut filters = vec![("regionCode", aws.region())];
    filters.extend(PRICE_FILTERS);
    let mut out = BTreeMap::new();
    aws.each_page(
        op::GET_PRODUCTS,
        |t| aws.port().price_products(&filters, t),
        |item| {
            if let Some((ty, price)) = parse_price_item(&item) {
                out.insert(ty, price);
            }
        },
    )
    .await?;
    Ok(out)
}

/// One Price List product (a JSON document) to `(instance type, USD per hour)`.
pub(crate) fn parse_price_item(item: &str) -> Option<(String, f64)> {
    let v: serde_json::Value = serde_json::from_str(item).ok()?;
    let ty = v
        .pointer("/product/attributes/instanceType")?
        .as_str()?
        .to_string();
    let terms = v.pointer("/terms/OnDemand")?.as_object()?;
    let price = terms.values().find_map(|term| {
        term.get("priceDimensions")?
            .as_object()?
            .values()
            .find_map(|dim| {
                (dim.get("unit")?.as_str()? == "Hrs")
                    .then(|| dim.pointer("/pricePerUnit/USD")?.as_str()?.parse::<f64>().ok())
                    .flatten()
            })
    })?;
    (price > 0.0).then_some((ty, price))
}

/// `{"<region>": {"<type>": <USD/hour>}}`, with `"*"` for any other region; keys starting
/// with `_` are comments.
pub(crate) fn from_file(path: &str, region: &str) -> Result<BTreeMap<String, f64>, AdapterError> {
    let err = |problem: String| AdapterError::PriceFile {
        path: path.to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse_price_file(&text, region).map_err(err)
}

pub(crate) fn parse_price_file(text: &str, region: &str) -> Result<BTreeMap<String, f64>, String> {
    let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Some(region_prices) = v.get(region).or_else(|| v.get("*")) else {
        return Err(format!("no prices for region {region} and no \"*\" default"));
    };
    let obj = region_prices
        .as_object()
        .ok_or_else(|| format!("{region}: expected an object of type → price"))?;
    obj.iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, p)| match p.as_f64() {
            Some(p) if p > 0.0 => Ok((k.clone(), p)),
            _ => Err(format!("{region}/{k}: expected a positive number, got {p}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_list_product_is_read() {
        // GIVEN a trimmed Price List product as GetProducts returns it
        let item = r#"{"product":{"attributes":{"instanceType":"m5.large","regionCode":"us-east-1"}},
          "terms":{"OnDemand":{"X.JRTCKXETXF":{"priceDimensions":{"X.JRTCKXETXF.6YS6EN2CT7":
          {"unit":"Hrs","pricePerUnit":{"USD":"0.0960000000"}}}}}}}"#;
        // THEN it gives the type and its hourly price
        assert_eq!(parse_price_item(item), Some(("m5.large".to_string(), 0.096)));
        assert_eq!(parse_price_item("{}"), None);
    }

    #[test]
    fn price_file_is_per_region_and_strict() {
        let text = r#"{"_note":"sample","us-east-1":{"_note":"x","m5.large":0.096}}"#;
        assert_eq!(
            parse_price_file(text, "us-east-1").unwrap().get("m5.large"),
            Some(&0.096)
        );
        assert!(parse_price_file(text, "eu-west-1")
            .unwrap_err()
            .contains("eu-west-1"));
        assert!(parse_price_file(r#"{"us-east-1":{"m5.large":"cheap"}}"#, "us-east-1").is_err());
    }
}

//! Orthanc's changes feed (`GET /changes?since=N`), through which a watcher learns of each
//! series once Orthanc deems it complete (a `StableSeries` change: no new instance for
//! Orthanc's `StableAge` seconds). Orthanc's REST root is taken to be the parent of its
//! DICOMweb root (`http://host:8042/dicom-web/` → `http://host:8042/`), with the same
//! credentials.

use reqwest::Url;
use serde_json::Value;

use crate::client::DicomWeb;
use crate::error::PacsError;

/// Changes read per request.
const PAGE: usize = 100;

/// One page of the feed.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The Orthanc ids of the series that became stable on this page, in feed order, each with
    /// its change's sequence number.
    pub stable_series: Vec<(u64, String)>,
    /// The sequence number to ask from next (`since`).
    pub last: u64,
    /// Whether this page reached the end of the feed.
    pub done: bool,
}

/// The Orthanc side of a [`DicomWeb`] client.
pub struct Orthanc<'a> {
    pacs: &'a DicomWeb,
    rest: Url,
}

impl<'a> Orthanc<'a> {
    /// Orthanc's REST API beside the DICOMweb service of `pacs`.
    pub fn new(pacs: &'a DicomWeb) -> Orthanc<'a> {
        let rest = pacs
            .root()
            .join("../")
            .unwrap_or_else(|_| pacs.root().clone());
        Orthanc { pacs, rest }
    }

    /// The sequence number of the newest change: where a watcher that ignores the past starts.
    pub async fn last_change(&self) -> Result<u64, PacsError> {
        let what = "Orthanc GET /changes?last";
        let v = self.pacs.get_json(self.url("changes?last"), what).await?;
        self.number(&v, "Last", what)
    }

    /// The changes after `since`, one page.
    pub async fn changes(&self, since: u64) -> Result<Changes, PacsError> {
        let what = format!("Orthanc GET /changes?since={since}");
        let v = self
            .pacs
            .get_json(
                self.url(&format!("changes?since={since}&limit={PAGE}")),
                &what,
            )
            .await?;
        let list = v["Changes"]
            .as_array()
            .ok_or_else(|| self.pacs.bad_answer(&what, "no Changes array".into()))?;
        let stable_series = list
            .iter()
            .filter(|c| c["ChangeType"] == "StableSeries")
            .filter_map(|c| Some((c["Seq"].as_u64()?, c["ID"].as_str()?.to_string())))
            .collect();
        Ok(Changes {
            stable_series,
            last: self.number(&v, "Last", &what)?,
            done: v["Done"].as_bool().unwrap_or(true),
        })
    }

    /// The SeriesInstanceUID of the series Orthanc knows as `id`; `None` when it is gone
    /// (deleted since the change).
    pub async fn series_uid(&self, id: &str) -> Result<Option<String>, PacsError> {
        let what = format!("Orthanc GET /series/{id}");
        // Orthanc ids are hex digits and dashes: nothing that could leave the REST root.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(self.pacs.bad_answer(&what, "not an Orthanc id".into()));
        }
        match self
            .pacs
            .get_json(self.url(&format!("series/{id}")), &what)
            .await
        {
            Ok(v) => Ok(v["MainDicomTags"]["SeriesInstanceUID"]
                .as_str()
                .map(str::to_string)),
            Err(PacsError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn url(&self, rel: &str) -> Url {
        self.rest.join(rel).unwrap_or_else(|_| self.rest.clone())
    }

    fn number(&self, v: &Value, key: &str, what: &str) -> Result<u64, PacsError> {
        v[key]
            .as_u64()
            .ok_or_else(|| self.pacs.bad_answer(what, format!("no number {key}")))
    }
}

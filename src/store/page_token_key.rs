//! The page-token key kept in the database, for deployments without an encryption key (see
//! `migrations/V7__page_token_key.sql` and `domain::PageTokenKeys`).

use rand::RngCore;

use super::{Store, StoreError};

impl Store {
    /// The database's page-token key, created on first use. Race-safe when several instances
    /// start at once: each offers a random key, the first insert wins, and all read the winner.
    pub async fn page_token_key(&self) -> Result<[u8; 32], StoreError> {
        let mut offered = [0u8; 32];
        rand::rng().fill_bytes(&mut offered);
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO page_token_key (id, key) VALUES (true, $1) ON CONFLICT (id) DO NOTHING",
                &[&offered.as_slice()],
            )
            .await?;
        let row = client
            .query_one("SELECT key FROM page_token_key WHERE id", &[])
            .await?;
        let key: Vec<u8> = row.try_get(0)?;
        <[u8; 32]>::try_from(key.as_slice())
            .map_err(|_| StoreError::Corrupt("the page-token key is not 32 bytes".into()))
    }
}

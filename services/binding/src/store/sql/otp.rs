//! Verification-code limits inside the transactions that send and check
//! codes: one `otp_sends` row per tenant, number and UTC day.

/// Checks a new code against `$limits` inside `$tx`, holding the tenant row
/// (the lock that serialises the tenant's sends) where the backend can;
/// returns `Throttled` with the time until the limit lifts.
macro_rules! otp_limits {
    ($tx:ident, $tenant:expr, $msisdn:expr, $limits:expr, $lock:literal) => {
        let limits: &SendLimits = $limits;
        let sql = concat!(
            "SELECT COALESCE(codes_per_day, $2) FROM tenants WHERE id = $1",
            $lock
        );
        let budget: i64 = sqlx::query_scalar(sql)
            .bind($tenant.as_uuid())
            .bind(i64::from(limits.per_tenant_default))
            .fetch_optional(&mut *$tx)
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound("tenant"))?;
        let day = limits.day.to_string();
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(last_sent_at_ms) FROM otp_sends WHERE tenant_id = $1 AND msisdn = $2",
        )
        .bind($tenant.as_uuid())
        .bind($msisdn.as_str())
        .fetch_one(&mut *$tx)
        .await
        .map_err(map_err)?;
        if let Some(last) = last.filter(|last| limits.now_ms - last < limits.cooldown_ms) {
            return Err(StoreError::Throttled {
                reason: format!(
                    "msisdn: a code was sent to this number less than {} s ago",
                    limits.cooldown_ms / 1_000
                ),
                retry_after_ms: last + limits.cooldown_ms - limits.now_ms,
            });
        }
        let today: Option<(i64, i64)> = sqlx::query_as(
            "SELECT sent, wrong FROM otp_sends WHERE tenant_id = $1 AND msisdn = $2 AND day = $3",
        )
        .bind($tenant.as_uuid())
        .bind($msisdn.as_str())
        .bind(&day)
        .fetch_optional(&mut *$tx)
        .await
        .map_err(map_err)?;
        let (sent, wrong) = today.unwrap_or((0, 0));
        let tomorrow = until_next_day(limits.now_ms);
        if wrong >= i64::from(limits.wrong_answers) {
            return Err(StoreError::Throttled {
                reason: "msisdn: too many wrong codes for this number today".to_owned(),
                retry_after_ms: tomorrow,
            });
        }
        if sent >= i64::from(limits.per_number) {
            return Err(StoreError::Throttled {
                reason: format!(
                    "msisdn: this number was sent {sent} codes today, the most allowed"
                ),
                retry_after_ms: tomorrow,
            });
        }
        let tenant_sent: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(sent) AS BIGINT) FROM otp_sends WHERE tenant_id = $1 AND day = $2",
        )
        .bind($tenant.as_uuid())
        .bind(&day)
        .fetch_one(&mut *$tx)
        .await
        .map_err(map_err)?;
        if tenant_sent.unwrap_or(0) >= budget {
            return Err(StoreError::Throttled {
                reason: format!(
                    "codes_per_day: the tenant's {budget} verification codes for today are spent"
                ),
                retry_after_ms: tomorrow,
            });
        }
    };
}

/// Counts a code sent inside `$tx` (after `otp_limits!`), dropping the
/// number's older days.
macro_rules! otp_sent {
    ($tx:ident, $tenant:expr, $msisdn:expr, $limits:expr) => {
        let limits: &SendLimits = $limits;
        let day = limits.day.to_string();
        sqlx::query("DELETE FROM otp_sends WHERE tenant_id = $1 AND msisdn = $2 AND day < $3")
            .bind($tenant.as_uuid())
            .bind($msisdn.as_str())
            .bind(&day)
            .execute(&mut *$tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO otp_sends (tenant_id, msisdn, day, sent, wrong, last_sent_at_ms) \
             VALUES ($1, $2, $3, 1, 0, $4) ON CONFLICT (tenant_id, msisdn, day) DO UPDATE \
             SET sent = otp_sends.sent + 1, last_sent_at_ms = excluded.last_sent_at_ms",
        )
        .bind($tenant.as_uuid())
        .bind($msisdn.as_str())
        .bind(&day)
        .bind(limits.now_ms)
        .execute(&mut *$tx)
        .await
        .map_err(map_err)?;
    };
}

/// The wrong answers `$msisdn` was given on `$day` (an expression).
macro_rules! otp_wrong {
    ($tx:ident, $tenant:expr, $msisdn:expr, $day:expr) => {{
        let wrong: Option<i64> = sqlx::query_scalar(
            "SELECT wrong FROM otp_sends WHERE tenant_id = $1 AND msisdn = $2 AND day = $3",
        )
        .bind($tenant.as_uuid())
        .bind($msisdn.as_str())
        .bind($day.to_string())
        .fetch_optional(&mut *$tx)
        .await
        .map_err(map_err)?;
        u32::try_from(wrong.unwrap_or(0)).unwrap_or(u32::MAX)
    }};
}

/// Records that `$msisdn` has been given `$wrong` wrong answers on `$day`.
macro_rules! otp_record_wrong {
    ($tx:ident, $tenant:expr, $msisdn:expr, $day:expr, $wrong:expr) => {
        sqlx::query(
            "INSERT INTO otp_sends (tenant_id, msisdn, day, sent, wrong, last_sent_at_ms) \
             VALUES ($1, $2, $3, 0, $4, 0) ON CONFLICT (tenant_id, msisdn, day) DO UPDATE \
             SET wrong = excluded.wrong",
        )
        .bind($tenant.as_uuid())
        .bind($msisdn.as_str())
        .bind($day.to_string())
        .bind(i64::from($wrong))
        .execute(&mut *$tx)
        .await
        .map_err(map_err)?;
    };
}

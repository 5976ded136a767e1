"""HTTP ingestion gateway: Zoom and Twilio webhooks and generic canonical events, into Kafka."""

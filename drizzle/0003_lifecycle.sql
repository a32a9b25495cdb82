CREATE TABLE "plugin_rollouts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"plugin_key" uuid NOT NULL,
	"version_id" uuid NOT NULL,
	"scope" varchar(16) NOT NULL,
	"organization_id" uuid,
	"percent" double precision NOT NULL,
	"state" varchar(16) NOT NULL,
	"max_error_rate" double precision,
	"min_calls" integer DEFAULT 20 NOT NULL,
	"window_minutes" integer DEFAULT 15 NOT NULL,
	"reason" text,
	"created_by" varchar(100) NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "plugin_version_pins" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid,
	"plugin_key" uuid NOT NULL,
	"version_id" uuid NOT NULL,
	"pinned_by" varchar(100) NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "plugin_versions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"plugin_key" uuid NOT NULL,
	"plugin_id" varchar(255) NOT NULL,
	"version" varchar(64) NOT NULL,
	"checksum" varchar(64) NOT NULL,
	"manifest" json NOT NULL,
	"files_dir" varchar(1000) NOT NULL,
	"state" varchar(20) NOT NULL,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ready_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "usage_rollups" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"organization_id" uuid NOT NULL,
	"plugin_id" varchar(255) NOT NULL,
	"version" varchar(64) NOT NULL,
	"tool" varchar(128) NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"calls" integer DEFAULT 0 NOT NULL,
	"cache_hits" integer DEFAULT 0 NOT NULL,
	"tool_errors" integer DEFAULT 0 NOT NULL,
	"timeouts" integer DEFAULT 0 NOT NULL,
	"rate_limited" integer DEFAULT 0 NOT NULL,
	"capacity" integer DEFAULT 0 NOT NULL,
	"invalid" integer DEFAULT 0 NOT NULL,
	"other_errors" integer DEFAULT 0 NOT NULL,
	"latency_ms_sum" double precision DEFAULT 0 NOT NULL,
	"latency_buckets" integer[] NOT NULL
);
--> statement-breakpoint
CREATE INDEX "plugin_rollouts_key_idx" ON "plugin_rollouts" USING btree ("plugin_key","state");--> statement-breakpoint
CREATE UNIQUE INDEX "plugin_version_pins_org_uq" ON "plugin_version_pins" USING btree ("organization_id","plugin_key") WHERE "plugin_version_pins"."organization_id" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "plugin_version_pins_all_uq" ON "plugin_version_pins" USING btree ("plugin_key") WHERE "plugin_version_pins"."organization_id" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "plugin_versions_key_checksum_uq" ON "plugin_versions" USING btree ("plugin_key","checksum");--> statement-breakpoint
CREATE INDEX "plugin_versions_key_idx" ON "plugin_versions" USING btree ("plugin_key");--> statement-breakpoint
CREATE UNIQUE INDEX "usage_rollups_key_uq" ON "usage_rollups" USING btree ("organization_id","plugin_id","version","tool","hour");--> statement-breakpoint
CREATE INDEX "usage_rollups_hour_idx" ON "usage_rollups" USING btree ("hour");
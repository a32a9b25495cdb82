CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"prefix" varchar(32) NOT NULL,
	"hash" varchar(64) NOT NULL,
	"role" varchar(16) NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"organization_id" uuid,
	"actor" varchar(100) NOT NULL,
	"action" varchar(64) NOT NULL,
	"plugin_id" varchar(255),
	"outcome" varchar(32) NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "organizations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" varchar(200) NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "plugin_instances" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"plugin_registry_id" uuid NOT NULL,
	"enabled" boolean DEFAULT false NOT NULL,
	"configuration" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"last_activity_at" timestamp with time zone,
	"priority" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "plugin_registry" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"plugin_id" varchar(255) NOT NULL,
	"name" varchar(255) NOT NULL,
	"version" varchar(64) NOT NULL,
	"plugin_path" varchar(500) NOT NULL,
	"manifest" jsonb,
	"checksum" varchar(64) NOT NULL,
	"source_type" varchar(20) NOT NULL,
	"organization_id" uuid,
	"status" varchar(20) NOT NULL,
	"validation_error" text,
	"installed" boolean DEFAULT false NOT NULL,
	"built" boolean DEFAULT false NOT NULL,
	"install_error" text,
	"build_error" text,
	"zip_upload_id" uuid,
	"max_concurrent_instances" integer DEFAULT 10 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "plugin_instances" ADD CONSTRAINT "plugin_instances_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "plugin_instances" ADD CONSTRAINT "plugin_instances_plugin_registry_id_plugin_registry_id_fk" FOREIGN KEY ("plugin_registry_id") REFERENCES "public"."plugin_registry"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_prefix_uq" ON "api_keys" USING btree ("prefix");--> statement-breakpoint
CREATE INDEX "api_keys_org_idx" ON "api_keys" USING btree ("organization_id");--> statement-breakpoint
CREATE INDEX "audit_log_org_at_idx" ON "audit_log" USING btree ("organization_id","id");--> statement-breakpoint
CREATE INDEX "audit_log_action_idx" ON "audit_log" USING btree ("action");--> statement-breakpoint
CREATE UNIQUE INDEX "plugin_instances_org_plugin_uq" ON "plugin_instances" USING btree ("organization_id","plugin_registry_id");--> statement-breakpoint
CREATE UNIQUE INDEX "plugin_registry_core_uq" ON "plugin_registry" USING btree ("plugin_id") WHERE "plugin_registry"."organization_id" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "plugin_registry_custom_uq" ON "plugin_registry" USING btree ("organization_id","plugin_id") WHERE "plugin_registry"."organization_id" is not null;
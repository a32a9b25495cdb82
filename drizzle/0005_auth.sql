CREATE TABLE "auth_signing_keys" (
	"kid" varchar(64) PRIMARY KEY NOT NULL,
	"alg" varchar(16) NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"private_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"retired_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "plugin_oauth" (
	"organization_id" uuid NOT NULL,
	"plugin_key" varchar(64) NOT NULL,
	"status" varchar(16) NOT NULL,
	"client_information" text,
	"tokens" text,
	"tokens_expire_at" timestamp with time zone,
	"code_verifier" text,
	"state_hash" varchar(64),
	"state_expires_at" timestamp with time zone,
	"discovery" jsonb,
	"requested_scope" text,
	"last_error" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "plugin_oauth_organization_id_plugin_key_pk" PRIMARY KEY("organization_id","plugin_key")
);
--> statement-breakpoint
ALTER TABLE "plugin_oauth" ADD CONSTRAINT "plugin_oauth_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "plugin_oauth_state_idx" ON "plugin_oauth" USING btree ("state_hash");
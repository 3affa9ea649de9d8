/**
 * The launch template a meshd-made launch uses, pure: its data (AMI, the
 * user data, instance profile, key pair, security groups, IMDSv2 with
 * instance tags in metadata — boot reads meshd:key from there) and its name,
 * `meshd-<cluster>-<provider>-<12 hex of sha256 of the data>`. Templates are
 * immutable here: a change of anything in the data (a new bundle, other
 * bootstrap peers) is a new name, so a template in use never changes under a
 * launch, and EC2's template is found again by name after a restart.
 */
import { createHash } from 'node:crypto'
import type { RequestLaunchTemplateData } from '@aws-sdk/client-ec2'

export interface TemplateInput {
  cluster: string
  provider: string
  imageId: string
  /** base64 already (user-data.ts' encodeUserData). */
  userData: string
  /** Name or ARN. */
  iamInstanceProfile?: string
  keyName?: string
  securityGroupIds: readonly string[]
}

export interface TemplateSpec {
  name: string
  data: RequestLaunchTemplateData
}

export function templateSpec (i: TemplateInput): TemplateSpec {
  const data: RequestLaunchTemplateData = {
    ImageId: i.imageId,
    UserData: i.userData,
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', InstanceMetadataTags: 'enabled' }
  }
  if (i.iamInstanceProfile !== undefined) data.IamInstanceProfile = i.iamInstanceProfile.startsWith('arn:') ? { Arn: i.iamInstanceProfile } : { Name: i.iamInstanceProfile }
  if (i.keyName !== undefined) data.KeyName = i.keyName
  if (i.securityGroupIds.length > 0) data.SecurityGroupIds = [...i.securityGroupIds]
  return { name: templateName(i.cluster, i.provider, data), data }
}

/** The name covers every byte of the data (keys sorted, so the same data always gives the same name). */
export function templateName (cluster: string, provider: string, data: RequestLaunchTemplateData): string {
  const hash = createHash('sha256').update(canonical(data)).digest('hex').slice(0, 12)
  return `meshd-${cluster}-${provider}-${hash}`
}

/** The prefix of every template this provider makes (for clean-up). */
export function templatePrefix (cluster: string, provider: string): string {
  return `meshd-${cluster}-${provider}-`
}

function canonical (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}

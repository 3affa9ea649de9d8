/**
 * SSM Parameter Store's GetParameter and Secrets Manager's GetSecretValue
 * (AWS JSON 1.1: POST with `X-Amz-Target: AmazonSSM.GetParameter` or
 * `secretsmanager.GetSecretValue`), enough for the instance's boot to fetch
 * the swarm key the way the SDK clients do when AWS_ENDPOINT_URL_SSM /
 * AWS_ENDPOINT_URL_SECRETS_MANAGER point here. Not modelled: KMS (every
 * SecureString decrypts), versions and labels, IAM on the instance role.
 */
export class Secrets {
  readonly parameters = new Map<string, string>()
  readonly secrets = new Map<string, string>()
  readonly reads: string[] = []

  /** Answers one JSON call: [status, body]. */
  handle (target: string, body: unknown): [number, Record<string, unknown>] {
    const req = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
    this.reads.push(target)
    if (target === 'AmazonSSM.GetParameter') {
      const name = String(req.Name ?? '')
      const value = this.parameters.get(name)
      if (value === undefined) return [400, { __type: 'ParameterNotFound', message: `Parameter ${name} not found.` }]
      return [200, { Parameter: { Name: name, Type: 'SecureString', Value: req.WithDecryption === true ? value : Buffer.from(value).toString('base64'), Version: 1, ARN: `arn:aws:ssm:us-east-1:123456789012:parameter/${name.replace(/^\//, '')}`, DataType: 'text' } }]
    }
    if (target === 'secretsmanager.GetSecretValue') {
      const id = String(req.SecretId ?? '')
      const value = this.secrets.get(id)
      if (value === undefined) return [400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }]
      return [200, { ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${id}-AbCdEf`, Name: id, SecretString: value, VersionId: '00000000-0000-0000-0000-000000000001', VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000 }]
    }
    return [400, { __type: 'UnknownOperationException', message: `the fake endpoint does not answer ${target}` }]
  }
}
